"""Key files: where LoRaWAN session keys live (never in code, config, logs or topics).

A key file is YAML, owner-only (mode 0600), created by `lora-telemetry keys generate`::

    # lora_telemetry key file: secret, keep it mode 0600
    devices:
      uav1:
        devaddr: 26011CA2
        nwkskey: <32 hex digits>
        appskey: <32 hex digits>
    network:
      beacon_key: <32 hex digits>    # authenticates the TDMA beacon (core/beacon.py)

The network section is made with the first device and copied into every export: every node
verifies beacons with it, and only the ground sends them.

The ground node holds the full file (every UAV's keys); each drone holds only its own entry,
exported with `lora-telemetry keys export` (:func:`export_device`): one lost or captured drone
must not let anyone forge the other UAVs' telemetry, as in LoRaWAN, where a device holds its
own keys and only the network side holds them all. A drone node refuses a file holding other
devices' keys (:func:`own_device_keys`) unless told otherwise. A file that anyone but its
owner may read or write is refused, as ssh refuses a private key with loose permissions.

`lora-telemetry keys rotate` (:func:`rotate_device`) gives a device new session keys under
the same DevAddr. Both ends keep their frame counters per session (persist.py), so both start
the new session at FCnt 0; frames of the old session cannot be replayed, as they do not
verify under the new keys.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.lorawan import format_dev_addr, parse_dev_addr, parse_key
from lora_telemetry.params import expand_user
from lora_telemetry.persist import session_fingerprint
from lora_telemetry.yaml_files import load_yaml, read_text

HEADER = "# lora_telemetry key file: secret, keep it mode 0600 (lora-telemetry keys generate)\n"
#: Where the ground node and the key commands look by default.
DEFAULT_KEY_FILE = "~/.config/lora_telemetry/keys.yaml"


class KeyFileError(ConfigError):
    """A key file that is missing, unsafe or malformed."""


@dataclass(frozen=True)
class DeviceKeys:
    """ABP session keys of one device. `repr` never shows the keys."""

    name: str
    devaddr: int
    nwkskey: bytes
    appskey: bytes

    def __repr__(self) -> str:
        return f"DeviceKeys(name={self.name!r}, devaddr={format_dev_addr(self.devaddr)}, keys=<hidden>)"

    __str__ = __repr__

    @property
    def session(self) -> str:
        """Fingerprint of these session keys (see persist.session_fingerprint)."""
        return session_fingerprint(self.nwkskey, self.appskey)

    def to_plain(self) -> dict[str, str]:
        return {
            "devaddr": format_dev_addr(self.devaddr),
            "nwkskey": self.nwkskey.hex().upper(),
            "appskey": self.appskey.hex().upper(),
        }


@dataclass(frozen=True)
class NetworkKeys:
    """Keys every node of one swarm shares. `repr` never shows them."""

    beacon_key: bytes

    def __repr__(self) -> str:
        return "NetworkKeys(<hidden>)"

    __str__ = __repr__

    def to_plain(self) -> dict[str, str]:
        return {"beacon_key": self.beacon_key.hex().upper()}


def _mapping(text: str, source: str) -> dict:
    data = load_yaml(text, source, KeyFileError)
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("devices", {}), dict) \
            or not isinstance(data.get("network", {}), dict):
        raise KeyFileError(f"{source}: expected a mapping with a 'devices' mapping (and "
                           "optionally a 'network' mapping)")
    unknown = sorted(str(k) for k in data if k not in ("devices", "network"))
    if unknown:
        raise KeyFileError(f"{source}: unknown section(s) {', '.join(unknown)}")
    return data


def parse_network_keys(text: str, source: str = "key file") -> NetworkKeys | None:
    """The network section of key-file text, None if it has none."""
    network = _mapping(text, source).get("network")
    if not network:
        return None
    if "beacon_key" not in network:
        raise KeyFileError(f"{source}: the network section has no beacon_key")
    try:
        return NetworkKeys(parse_key(_hex_text(network["beacon_key"], 32), "beacon_key"))
    except ConfigError as exc:
        raise KeyFileError(f"{source}: network: {exc}") from None


def parse_key_file(text: str, source: str = "key file") -> dict[str, DeviceKeys]:
    """Parse key-file text into devices by name (pure; no permission checks)."""
    data = _mapping(text, source)
    devices: dict[str, DeviceKeys] = {}
    seen_addr: dict[int, str] = {}
    for name, entry in (data.get("devices") or {}).items():
        where = f"{source}: device {name!r}"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where}: expected devaddr, nwkskey and appskey")
        missing = [k for k in ("devaddr", "nwkskey", "appskey") if k not in entry]
        if missing:
            raise KeyFileError(f"{where}: missing {', '.join(missing)}")
        try:
            devaddr = parse_dev_addr(_hex_text(entry["devaddr"], 8))
            nwk = parse_key(_hex_text(entry["nwkskey"], 32), "nwkskey")
            app = parse_key(_hex_text(entry["appskey"], 32), "appskey")
        except ConfigError as exc:
            raise KeyFileError(f"{where}: {exc}") from None
        if devaddr in seen_addr:
            raise KeyFileError(
                f"{where}: DevAddr {format_dev_addr(devaddr)} is also used by {seen_addr[devaddr]!r}"
            )
        seen_addr[devaddr] = str(name)
        devices[str(name)] = DeviceKeys(str(name), devaddr, nwk, app)
    return devices


def _hex_text(value: object, digits: int) -> str:
    # YAML reads an all-digit DevAddr such as 26011234 as an int: restore its hex spelling.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).zfill(digits)
    return str(value)


def check_permissions(path: Path) -> None:
    """Refuse a key file that others may read or write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: permissions {stat.filemode(mode)} let other users read or change the keys;"
            f" run: chmod 600 {path}"
        )


def _read_checked(path: str | os.PathLike[str]) -> tuple[Path, str]:
    p = Path(expand_user(path, "key file", KeyFileError))
    try:
        if not p.is_file():
            raise KeyFileError(f"key file {p} not found; create it with: lora-telemetry keys generate")
        check_permissions(p)
    except OSError as exc:  # a name too long, a directory we may not search
        raise KeyFileError(f"key file {p}: {exc.strerror or exc}") from None
    return p, read_text(p, f"key file {p}", KeyFileError)


def load_key_file(path: str | os.PathLike[str]) -> dict[str, DeviceKeys]:
    """Read a key file's devices after checking it is owner-only."""
    p, text = _read_checked(path)
    return parse_key_file(text, str(p))


def load_network_keys(path: str | os.PathLike[str]) -> NetworkKeys | None:
    """Read a key file's network section (None if it has none), checking it is owner-only."""
    p, text = _read_checked(path)
    return parse_network_keys(text, str(p))


def _load_all(path: Path) -> tuple[dict[str, DeviceKeys], NetworkKeys | None]:
    if not path.exists():
        return {}, None
    p, text = _read_checked(path)
    return parse_key_file(text, str(p)), parse_network_keys(text, str(p))


def device_keys(path: str | os.PathLike[str], name: str) -> DeviceKeys:
    """The keys of one device, with a clear error if the file lacks it."""
    return device_keys_from(load_key_file(path), path, name)


def own_device_keys(path: str | os.PathLike[str], name: str, *,
                    allow_shared: bool = False) -> DeviceKeys:
    """A drone's keys: the file must hold this device only, unless `allow_shared`."""
    devices = load_key_file(path)
    keys = device_keys_from(devices, path, name)
    others = sorted(set(devices) - {name})
    if others and not allow_shared:
        raise KeyFileError(
            f"key file {path} also holds the keys of {len(others)} other device(s) "
            f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}): a captured drone "
            f"could forge them all. Give this drone its own: lora-telemetry keys export "
            f"--name {name} --from {path} --out <file> (or set allow_shared_key_file: true)")
    return keys


def device_keys_from(devices: dict[str, DeviceKeys], path: str | os.PathLike[str],
                     name: str) -> DeviceKeys:
    if name not in devices:
        known = ", ".join(sorted(devices)) or "none"
        raise KeyFileError(f"key file {path} has no device {name!r} (devices: {known})")
    return devices[name]


def export_device(source: str | os.PathLike[str], name: str, out: str | os.PathLike[str], *,
                  force: bool = False) -> DeviceKeys:
    """Write a key file holding one device's keys only (for that drone), owner-only."""
    devices, network = _load_all(Path(expand_user(source, "key file", KeyFileError)))
    if not devices:
        load_key_file(source)  # the clear "not found" error
    keys = device_keys_from(devices, source, name)
    target = Path(expand_user(out, "key file", KeyFileError))
    if target.exists() and not force:
        raise KeyFileError(f"{target} exists; use --force to overwrite it")
    if target.exists() and target.resolve() == Path(expand_user(source, "key file",
                                                                 KeyFileError)).resolve():
        raise KeyFileError(f"{target} is the file the keys come from")
    write_key_file(target, {name: keys}, network=network,
                   header=f"{HEADER}# keys of {name} only (lora-telemetry keys export)\n")
    return keys


def rotate_device(path: str | os.PathLike[str], name: str) -> DeviceKeys:
    """Give a device of a key file fresh session keys under the same DevAddr."""
    p = Path(expand_user(path, "key file", KeyFileError))
    load_key_file(p)  # the clear errors for a missing or unsafe file
    devices, network = _load_all(p)
    old = device_keys_from(devices, p, name)
    new = generate_device(name, old.devaddr)
    devices[name] = new
    write_key_file(p, devices, network=network)
    return new


def write_key_file(path: str | os.PathLike[str], devices: dict[str, DeviceKeys], *,
                   network: NetworkKeys | None = None, header: str = HEADER) -> None:
    """Write atomically with mode 0600 from the first byte (no window where others can read)."""
    p = Path(expand_user(path, "key file", KeyFileError))
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body: dict[str, object] = {"devices": {name: d.to_plain() for name, d in devices.items()}}
    if network is not None:
        body["network"] = network.to_plain()
    text = header + yaml.safe_dump(body, sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def generate_device(name: str, devaddr: int | str) -> DeviceKeys:
    """Fresh random session keys from the OS's CSPRNG."""
    addr = devaddr if isinstance(devaddr, int) else parse_dev_addr(devaddr)
    return DeviceKeys(name, addr, secrets.token_bytes(16), secrets.token_bytes(16))


def generate_network() -> NetworkKeys:
    """A fresh network section (the beacon key) from the OS's CSPRNG."""
    return NetworkKeys(secrets.token_bytes(16))


def add_device(path: str | os.PathLike[str], device: DeviceKeys, *, replace: bool = False) -> None:
    """Add (or with `replace`, overwrite) one device in a key file, creating the file if needed."""
    p = Path(expand_user(path, "key file", KeyFileError))
    if p.exists():
        load_key_file(p)  # the clear errors for an unsafe or broken file
    devices, network = _load_all(p)
    if device.name in devices and not replace:
        raise KeyFileError(f"{p} already has device {device.name!r}; use --force to replace its keys")
    for other in devices.values():
        if other.devaddr == device.devaddr and other.name != device.name:
            raise KeyFileError(
                f"{p}: DevAddr {format_dev_addr(device.devaddr)} is already used by {other.name!r}"
            )
    devices[device.name] = device
    write_key_file(p, devices, network=network or generate_network())
