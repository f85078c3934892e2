"""The checks of a mission config that need the built satellite, done without touching its data.

Why: a config error must not count as a boot. The schema (flightsw.config) checks everything the
file says on its own; what only the assembled components know (the channel names a telemetry
packet, the beacon or the battery FDIR refer to) is checked by building the satellite offline on a
scratch copy of the config, in a temporary directory, before the real one counts its boot. Nothing
is written to the mission's data directory, no hardware is opened, no key file is created.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

from flightsw.config import RADIO_KIND, ConfigError, MissionConfig
from flightsw.core.dictionary import Dictionary, DictionaryError


def _named(config: MissionConfig, exc: Exception) -> ConfigError:
    message = str(exc) if isinstance(exc, ConfigError) else f"dictionary: {exc}"  # e.g. overlapping base ids
    if not message.startswith(f"{config.source}: "):
        message = f"{config.source}: {message}"
    return ConfigError(message)


@contextlib.contextmanager
def offline_dictionary(config: MissionConfig) -> Iterator[Dictionary]:
    """The dictionary of ``config``'s satellite, built offline on a scratch data directory.

    A config mistake found while building is a ConfigError naming the file and the key.
    """
    from flightsw.app import Satellite
    from hal.watchdog import NullWatchdog

    with tempfile.TemporaryDirectory(prefix="flightsw-offline-") as tmp:
        scratch = copy.deepcopy(config)
        scratch.storage.data_dir = tmp
        scratch.storage.fsync = False
        scratch.link.key_file = "uplink.keys"  # a throwaway key in the scratch directory, never the mission's
        # The real start-up logs whatever the build has to say; the rehearsal stays quiet.
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            sat = Satellite(scratch, watchdog=NullWatchdog(), offline=True)
        except (ConfigError, DictionaryError) as exc:
            raise _named(config, exc) from None
        finally:
            logging.disable(previous)
        try:
            logging.disable(logging.WARNING)
            try:
                dictionary = sat.finalize()
            except (ConfigError, DictionaryError) as exc:
                raise _named(config, exc) from None
            finally:
                logging.disable(previous)
            yield dictionary
        finally:
            sat.workers.shutdown()


def check_uplink_keys(config: MissionConfig) -> None:
    """A flight config (``generate_key = false``) needs its key file: readable and well formed."""
    if not config.devices_of(RADIO_KIND) or config.link.generate_key:
        return
    from flightsw.link.auth import KeyFileError, KeyRing
    from flightsw.link.settings import load_link_settings

    path = load_link_settings(config).key_file
    try:
        KeyRing.load(Path(path))
    except KeyFileError as exc:
        raise ConfigError(f"{config.source}: link.key_file: {exc}") from None


def check_config(config: MissionConfig) -> None:
    """Everything about ``config`` that can be known before start-up; ConfigError naming the key."""
    with offline_dictionary(config):
        pass
    check_uplink_keys(config)
