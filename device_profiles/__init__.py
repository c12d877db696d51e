"""Device profiles: vendor payloads <-> canonical `SensorEvent`s, one YAML file per model.

The gateway binds a profile to each configured device and decodes that
device's MQTT payloads with the resulting `DeviceCodec`; the simulator uses
the same codec to encode canonical events into the payloads a real device
would send.
"""

from .codec import DecodeError, DeviceCodec
from .loader import (
    Profile,
    ProfileError,
    ReadingSpec,
    builtin_profiles,
    get_profile,
    load_profile_file,
)

__all__ = [
    "DecodeError",
    "DeviceCodec",
    "Profile",
    "ProfileError",
    "ReadingSpec",
    "builtin_profiles",
    "get_profile",
    "load_profile_file",
]
