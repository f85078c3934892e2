#!/bin/bash
# Install flightsw on a Raspberry Pi OS flight computer or bench board (Debian bookworm/trixie,
# arm64 or armhf). Idempotent: every step checks first and only changes what differs, so running
# it again is safe and reports "0 changes". --dry-run prints every change without making it.
#
#   sudo deploy/install.sh --wheel dist/flightsw-0.1.0-py3-none-any.whl \
#        --config deploy/flight.toml --key uplink.keys [--radio-usb 0403:6001:A10K1234]
#
# Works with the target OS's own python3 and pip (bookworm: Python 3.11, pip 23.0.1). Dependencies
# land in /opt/flightsw/wheelhouse as wheels only (sdists such as crcmod's are built into wheels
# here), because every later install and update runs pip with --no-index from that wheelhouse.
# An offline --wheelhouse is checked to satisfy the install before anything is changed.
#
# --root DIR operates on a staged root (tests, image preparation); system commands then use
# useradd/groupadd --root, dpkg --admindir, systemctl --root and chroot for apt-get.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=/
DRY_RUN=0
WHEEL=""
SHA256=""
CONFIG="$SCRIPT_DIR/flight.toml"
KEY=""
EXTRAS=""
WHEELHOUSE=""
RADIO_USB=""
KEEP_BT=0
CAMERA=auto
APT=1
OVERLAY_ROOT=0
PYTHON=${PYTHON:-python3}
SERVICE_USER=flightsw
INSTALL_DIR=/opt/flightsw
DATA_DIR=/var/lib/flightsw
ETC_DIR=/etc/flightsw
CHANGES=0

usage() {
    cat <<EOF
usage: install.sh --wheel FILE [options]
  --wheel FILE        flightsw wheel to install (a FILE.sha256 beside it is checked if present)
  --sha256 HEX        expected SHA-256 of the wheel
  --config FILE       mission config installed as $ETC_DIR/mission.toml (default deploy/flight.toml)
  --key FILE          uplink key file installed as $DATA_DIR/uplink.keys, mode 0600
  --extras LIST       extras installed with the wheel, e.g. payload
  --wheelhouse DIR    dependency wheels for an offline install, checked before any change
                      (default: fetch from the package registry and build any sdist into a wheel)
  --radio-usb VID:PID[:SERIAL]  bench radio on a USB serial adapter (default: PL011 ttyAMA0)
  --camera yes|no|auto  install python3-picamera2 (auto: a real camera device in the config)
  --keep-bluetooth    do not move Bluetooth off the PL011 UART (dtoverlay=disable-bt)
  --no-apt            do not install Debian packages
  --overlay-root      enable the read-only overlay root (raspi-config), see docs/deploy.md
  --root DIR          operate on a staged root directory instead of /
  --dry-run           print every change, make none
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --wheel) WHEEL=${2:?--wheel needs a file}; shift 2 ;;
        --sha256) SHA256=${2:?--sha256 needs a value}; shift 2 ;;
        --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
        --key) KEY=${2:?--key needs a file}; shift 2 ;;
        --extras) EXTRAS=${2:?--extras needs a list}; shift 2 ;;
        --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a directory}; shift 2 ;;
        --radio-usb) RADIO_USB=${2:?--radio-usb needs VID:PID[:SERIAL]}; shift 2 ;;
        --camera) CAMERA=${2:?--camera needs yes, no or auto}; shift 2 ;;
        --keep-bluetooth) KEEP_BT=1; shift ;;
        --no-apt) APT=0; shift ;;
        --overlay-root) OVERLAY_ROOT=1; shift ;;
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done

[[ -n "$WHEEL" ]] || { usage >&2; die "--wheel is required"; }
[[ -f "$WHEEL" ]] || die "wheel $WHEEL does not exist"
[[ -f "$CONFIG" ]] || die "config $CONFIG does not exist"
[[ -z "$KEY" || -f "$KEY" ]] || die "key file $KEY does not exist"
[[ -z "$WHEELHOUSE" || -d "$WHEELHOUSE" ]] || die "wheelhouse $WHEELHOUSE is not a directory"
[[ -d "$ROOT" ]] || die "root $ROOT is not a directory"
[[ "$CAMERA" =~ ^(yes|no|auto)$ ]] || die "--camera must be yes, no or auto, not $CAMERA"
if [[ -n "$RADIO_USB" && ! "$RADIO_USB" =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}(:[A-Za-z0-9_.-]+)?$ ]]; then
    die "--radio-usb must be VID:PID or VID:PID:SERIAL in hex (e.g. 0403:6001:A10K1234), not $RADIO_USB"
fi
ROOT=$(cd "$ROOT" && pwd)
R=${ROOT%/}   # prefix for paths: "" on the live system
WHEEL_NAME=$(basename "$WHEEL")
[[ "$WHEEL_NAME" =~ ^flightsw-([A-Za-z0-9_.!+]+)-.*\.whl$ ]] || die "$WHEEL_NAME is not a flightsw wheel file name"
VERSION=${BASH_REMATCH[1]}
[[ $DRY_RUN == 1 || $(id -u) == 0 ]] || die "run as root (or use --dry-run)"

# Extras installed with this version: --extras, else those the install root already uses.
STATE_FILE="$R$INSTALL_DIR/update-state.json"
CURRENT_EXTRAS=$([[ -f "$STATE_FILE" ]] && "$PYTHON" -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["state"]["extras"]))' "$STATE_FILE" || true)
SPEC_EXTRAS=${EXTRAS:-$CURRENT_EXTRAS}
SPEC=$WHEEL; [[ -z "$SPEC_EXTRAS" ]] || SPEC="$WHEEL[$SPEC_EXTRAS]"
PIP=("$PYTHON" -m pip --disable-pip-version-check)
WHEEL_DIR=$(cd "$(dirname "$WHEEL")" && pwd)

# wheelhouse_check DIR...: can these directories alone (no index, wheels only) install SPEC with
# this python? pip's --dry-run (pip >= 22.2) resolves without installing; --target keeps it off the
# system site-packages (ignores what is installed there, and is allowed on an externally managed
# Python such as Debian's). Prints pip's reason on failure.
wheelhouse_check() {
    local links=() dir out scratch rc=0
    for dir in "$@"; do [[ ! -d "$dir" ]] || links+=(--find-links "$dir"); done
    scratch=$(mktemp -d)
    out=$("${PIP[@]}" install --dry-run --quiet --target "$scratch" --no-index --only-binary=:all: \
        "${links[@]}" "$SPEC" 2>&1) || rc=$?
    rm -rf "$scratch"
    [[ $rc == 0 ]] && return 0
    # pip's last ERROR line names the missing distribution; else its last line, else the exit code.
    out=$(grep -E '^ERROR: ' <<< "$out" | tail -1 | sed 's/^ERROR: //' || grep -v '^[[:space:]]*$' <<< "$out" | tail -1 || true)
    echo "${out:-pip exited $rc}"
    return 1
}

# preflight: refuse, before changing anything, a wheelhouse that cannot satisfy the install.
preflight() {
    local reason
    "${PIP[@]}" --version >/dev/null 2>&1 || die "$PYTHON has no pip: install python3-pip and python3-venv (install.sh does without --no-apt)"
    if [[ -n "$WHEELHOUSE" ]]; then
        reason=$(wheelhouse_check "$WHEELHOUSE" "$WHEEL_DIR" "$R$INSTALL_DIR/wheelhouse") \
            || die "wheelhouse $WHEELHOUSE cannot install $(basename "$SPEC") offline with $("$PYTHON" -V 2>&1): ${reason:-unknown reason} (every dependency must be a wheel for this Python and platform; see docs/deploy.md)"
        ok "wheelhouse $WHEELHOUSE satisfies $(basename "$SPEC")"
    fi
}

# --------------------------------------------------------------------------- helpers

# change "what" command...: run (or, in a dry run, print) one change.
change() {
    local what=$1; shift
    CHANGES=$((CHANGES + 1))
    if [[ $DRY_RUN == 1 ]]; then
        echo "would: $what"
        echo "       $(printf '%q ' "$@")"
    else
        echo "change: $what"
        "$@"
    fi
}
ok() { echo "ok: $*"; }
live() { [[ -z "$R" ]]; }

# ensure_dir PATH MODE OWNER GROUP
ensure_dir() {
    local path=$1 mode=$2 owner=$3 group=$4
    if [[ ! -d "$R$path" ]]; then
        change "create directory $path ($mode $owner:$group)" install -d -m "$mode" "$R$path"
        [[ $DRY_RUN == 1 ]] || chown_in_root "$owner:$group" "$path"
        return
    fi
    local actual
    actual=$(stat -c '%a' "$R$path")
    [[ "$actual" == "${mode#0}" ]] || change "set mode $mode on $path (was $actual)" chmod "$mode" "$R$path"
    ensure_owner "$path" "$owner" "$group"
}

# Owner names resolve through the root's own /etc/passwd, so a staged root gets its own ids.
uid_of() { awk -F: -v n="$1" '$1 == n {print $3}' "$R/etc/passwd" 2>/dev/null; }
gid_of() { awk -F: -v n="$1" '$1 == n {print $3}' "$R/etc/group" 2>/dev/null; }
chown_in_root() {
    local owner=${1%%:*} group=${1##*:} path=$2 uid gid
    uid=$(uid_of "$owner"); gid=$(gid_of "$group")
    [[ -n "$uid" && -n "$gid" ]] || die "user $owner or group $group missing in $ROOT/etc"
    chown "$uid:$gid" "$R$path"
}
ensure_owner() {
    local path=$1 owner=$2 group=$3 uid gid
    uid=$(uid_of "$owner"); gid=$(gid_of "$group")
    if [[ -z "$uid" || -z "$gid" ]]; then
        # Only possible in a dry run, before the user exists.
        change "set owner $owner:$group on $path" chown "$owner:$group" "$R$path"
        return
    fi
    [[ "$(stat -c '%u:%g' "$R$path")" == "$uid:$gid" ]] \
        || change "set owner $owner:$group on $path" chown "$uid:$gid" "$R$path"
}

# ensure_file SRC DEST MODE OWNER GROUP
ensure_file() {
    local src=$1 dest=$2 mode=$3 owner=$4 group=$5
    if [[ ! -f "$R$dest" ]] || ! cmp -s "$src" "$R$dest"; then
        change "install $dest ($mode $owner:$group)" install -D -m "$mode" "$src" "$R$dest"
        [[ $DRY_RUN == 1 ]] || chown_in_root "$owner:$group" "$dest"
        FILES_CHANGED=1
        return
    fi
    local actual
    actual=$(stat -c '%a' "$R$dest")
    [[ "$actual" == "${mode#0}" ]] || change "set mode $mode on $dest (was $actual)" chmod "$mode" "$R$dest"
    ensure_owner "$dest" "$owner" "$group"
}

# ensure_content DEST MODE TEXT: a small generated file.
ensure_content() {
    local dest=$1 mode=$2 text=$3 tmp
    tmp=$(mktemp)
    printf '%s\n' "$text" > "$tmp"
    ensure_file "$tmp" "$dest" "$mode" root root
    rm -f "$tmp"
}

# set_boot_option FILE KEY VALUE: KEY=VALUE in config.txt (replaces a conflicting value).
set_boot_option() {
    local file=$1 key=$2 value=$3
    if grep -qxF "$key=$value" "$file"; then
        ok "$key=$value in ${file#"$R"}"
    elif grep -q "^$key=" "$file"; then
        change "set $key=$value in ${file#"$R"} (was $(grep "^$key=" "$file" | head -1))" \
            sed -i "s|^$key=.*|$key=$value|" "$file"
    else
        change "add $key=$value to ${file#"$R"}" sh -c 'printf "%s\n" "$1" >> "$2"' _ "$key=$value" "$file"
    fi
}

ensure_line() {
    local file=$1 line=$2
    if grep -qxF "$line" "$file"; then ok "$line in ${file#"$R"}"
    else change "add $line to ${file#"$R"}" sh -c 'printf "%s\n" "$1" >> "$2"' _ "$line" "$file"; fi
}

# fill_wheelhouse DEST: every dependency of SPEC as a wheel in DEST. `pip wheel` takes a wheel from
# the registry where there is one and builds the rest (crcmod publishes only an sdist; without a
# compiler its setup.py falls back to pure Python); the later installs and updates are then
# offline (--no-index) and need no build backend. The flightsw wheel itself is not kept there.
fill_wheelhouse() {
    local dest=$1 scratch rc=0
    scratch=$(mktemp -d)
    "${PIP[@]}" wheel --quiet --wheel-dir "$scratch" --find-links "$dest" "$SPEC" || rc=$?
    if [[ $rc == 0 ]]; then
        rm -f "$scratch"/flightsw-*.whl
        cp -n "$scratch"/*.whl "$dest"/ 2>/dev/null || true
    fi
    rm -rf "$scratch"
    return $rc
}

run_in_root() { if live; then "$@"; else chroot "$ROOT" "$@"; fi; }

# --------------------------------------------------------------------------- 1. packages

camera_configured() {
    # A [[devices]] entry of kind "camera" whose backend is "real".
    awk '
        /^\[\[devices\]\]/ { if (kind == "camera" && backend == "real") found = 1; kind = ""; backend = ""; next }
        /^\[/ { if (kind == "camera" && backend == "real") found = 1; kind = ""; backend = "" }
        /^[[:space:]]*kind[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); kind = $0 }
        /^[[:space:]]*backend[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); backend = $0 }
        END { if (kind == "camera" && backend == "real") found = 1; exit !found }
    ' "$CONFIG"
}

PACKAGES=(python3 python3-venv python3-pip i2c-tools)
# GPIO lines (hal.gpio): libgpiod's Python bindings; the flight venv sees system packages.
PACKAGES+=(python3-libgpiod)
case "$CAMERA" in
    yes) PACKAGES+=(python3-picamera2) ;;
    auto) if camera_configured; then PACKAGES+=(python3-picamera2); fi ;;
esac

echo "== flightsw $VERSION -> ${ROOT} $([[ $DRY_RUN == 1 ]] && echo '(dry run)')"
PREFLIGHT_DONE=0
if [[ $APT == 0 ]] || "${PIP[@]}" --version >/dev/null 2>&1; then preflight; PREFLIGHT_DONE=1; fi
if [[ $APT == 1 ]]; then
    MISSING=()
    for pkg in "${PACKAGES[@]}"; do
        if dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
            ok "package $pkg installed"
        else
            MISSING+=("$pkg")
        fi
    done
    if [[ ${#MISSING[@]} -gt 0 ]]; then
        change "install Debian packages ${MISSING[*]}" \
            run_in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${MISSING[@]}"
    fi
else
    echo "skip: Debian packages (--no-apt): ${PACKAGES[*]}"
fi
# pip was missing and has just been installed with the Debian packages: check now, still before
# anything of flightsw's own is changed. (A dry run cannot install it, so it cannot check.)
if [[ $PREFLIGHT_DONE == 0 ]]; then
    if [[ $DRY_RUN == 1 ]]; then echo "skip: wheelhouse check (pip is not installed yet)"; else preflight; fi
fi

# --------------------------------------------------------------------------- 2. user and groups

ROOT_OPT=()
live || ROOT_OPT=(--root "$ROOT")
for group in i2c dialout gpio video; do
    if [[ -n "$(gid_of "$group")" ]]; then ok "group $group exists"
    else change "create system group $group" groupadd "${ROOT_OPT[@]}" --system "$group"; fi
done
if [[ -n "$(uid_of "$SERVICE_USER")" ]]; then
    ok "user $SERVICE_USER exists"
else
    change "create system user $SERVICE_USER (no login, home $DATA_DIR)" \
        useradd "${ROOT_OPT[@]}" --system --user-group --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "flightsw flight software" "$SERVICE_USER"
fi
for group in i2c dialout gpio video; do
    if awk -F: -v g="$group" -v u="$SERVICE_USER" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) f = 1 } END { exit !f }' "$R/etc/group" 2>/dev/null; then
        ok "user $SERVICE_USER in group $group"
    else
        change "add user $SERVICE_USER to group $group" usermod "${ROOT_OPT[@]}" --append --groups "$group" "$SERVICE_USER"
    fi
done

# --------------------------------------------------------------------------- 3. directories and files

FILES_CHANGED=0
ensure_dir "$INSTALL_DIR" 0755 root root
ensure_dir "$INSTALL_DIR/versions" 0755 root root
ensure_dir "$INSTALL_DIR/wheelhouse" 0755 root root
ensure_dir "$ETC_DIR" 0750 root "$SERVICE_USER"
ensure_dir "$DATA_DIR" 0750 "$SERVICE_USER" "$SERVICE_USER"
ensure_dir "$DATA_DIR/update" 0750 "$SERVICE_USER" "$SERVICE_USER"

ensure_file "$CONFIG" "$ETC_DIR/mission.toml" 0640 root "$SERVICE_USER"
if [[ -n "$KEY" ]]; then
    ensure_file "$KEY" "$DATA_DIR/uplink.keys" 0600 "$SERVICE_USER" "$SERVICE_USER"
elif [[ ! -f "$R$DATA_DIR/uplink.keys" ]]; then
    echo "warning: no --key given and no $DATA_DIR/uplink.keys: uplinked commands will be rejected" >&2
fi

# The updater's stable copy, taken from the wheel being installed (the boot guard runs it).
UPDATER=$(mktemp)
trap 'rm -f "$UPDATER"' EXIT
"$PYTHON" - "$WHEEL" "$UPDATER" <<'PY' || die "$WHEEL_NAME has no flightsw/update.py"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, open(sys.argv[2], "wb") as out:
    out.write(wheel.read("flightsw/update.py"))
PY
ensure_file "$UPDATER" "$INSTALL_DIR/updater/update.py" 0644 root root

ensure_file "$SCRIPT_DIR/flightsw.service" /etc/systemd/system/flightsw.service 0644 root root
ensure_file "$SCRIPT_DIR/flightsw-update.service" /etc/systemd/system/flightsw-update.service 0644 root root
ensure_file "$SCRIPT_DIR/flightsw-update.path" /etc/systemd/system/flightsw-update.path 0644 root root
for conf in "$SCRIPT_DIR"/system.conf.d/*.conf; do
    ensure_file "$conf" "/etc/systemd/system.conf.d/$(basename "$conf")" 0644 root root
done
for conf in "$SCRIPT_DIR"/journald.conf.d/*.conf; do
    ensure_file "$conf" "/etc/systemd/journald.conf.d/$(basename "$conf")" 0644 root root
done

# udev: the flight rule, plus the bench USB adapter when given.
UDEV_RULES=$(cat "$SCRIPT_DIR/udev/99-flightsw-radio.rules")
if [[ -n "$RADIO_USB" ]]; then
    IFS=: read -r VID PID SERIAL <<< "$RADIO_USB"
    MATCH="SUBSYSTEM==\"tty\", ATTRS{idVendor}==\"${VID,,}\", ATTRS{idProduct}==\"${PID,,}\""
    [[ -z "$SERIAL" ]] || MATCH+=", ATTRS{serial}==\"$SERIAL\""
    UDEV_RULES+=$'\n'"# Bench: USB serial adapter $RADIO_USB (added by install.sh --radio-usb)."
    UDEV_RULES+=$'\n'"$MATCH, SYMLINK+=\"flightsw-radio\", GROUP=\"dialout\", MODE=\"0660\""
fi
ensure_content /etc/udev/rules.d/99-flightsw-radio.rules 0644 "$UDEV_RULES"
ensure_content /etc/modules-load.d/flightsw.conf 0644 "i2c-dev"

# --------------------------------------------------------------------------- 4. software version

UPDATE=("$PYTHON" "$R$INSTALL_DIR/updater/update.py" --root "$R$INSTALL_DIR" --data-dir "$R$DATA_DIR" --restart-command "")
[[ $DRY_RUN == 0 ]] || UPDATE=("$PYTHON" "$UPDATER" --root "$R$INSTALL_DIR" --data-dir "$R$DATA_DIR" --restart-command "")
if [[ -n "$EXTRAS" ]]; then
    read -r -a EXTRA_LIST <<< "${EXTRAS//,/ }"
    [[ "$CURRENT_EXTRAS" == "$(IFS=,; echo "${EXTRA_LIST[*]}")" ]] && ok "extras $EXTRAS" \
        || change "install extras $EXTRAS with every version" "${UPDATE[@]}" set-extras "${EXTRA_LIST[@]}"
fi
if [[ -f "$R$INSTALL_DIR/versions/$VERSION/.flightsw-install.json" ]]; then
    ok "version $VERSION installed"
else
    if [[ -n "$WHEELHOUSE" ]]; then
        change "copy dependency wheels from $WHEELHOUSE" sh -c 'cp -n "$1"/*.whl "$2"/ 2>/dev/null || true' _ "$WHEELHOUSE" "$R$INSTALL_DIR/wheelhouse"
    else
        change "fetch dependency wheels into $INSTALL_DIR/wheelhouse (sdists built into wheels)" \
            fill_wheelhouse "$R$INSTALL_DIR/wheelhouse"
        if [[ $DRY_RUN == 0 ]]; then
            reason=$(wheelhouse_check "$WHEEL_DIR" "$R$INSTALL_DIR/wheelhouse") \
                || die "the wheelhouse $INSTALL_DIR/wheelhouse cannot install $(basename "$SPEC"): ${reason:-unknown reason}"
        fi
    fi
    SHA_OPT=(); [[ -z "$SHA256" ]] || SHA_OPT=(--sha256 "$SHA256")
    if [[ -z "$SHA256" && ! -f "$WHEEL.sha256" ]]; then
        # A local install: the operator handed us the file, so we record its digest ourselves.
        SHA_OPT=(--sha256 "$(sha256sum "$WHEEL" | cut -d' ' -f1)")
        echo "note: no $WHEEL_NAME.sha256 beside the wheel; using its digest ${SHA_OPT[1]}"
    fi
    change "install flightsw $VERSION into $INSTALL_DIR/versions/$VERSION" "${UPDATE[@]}" install "$WHEEL" "${SHA_OPT[@]}"
fi
CURRENT=$(basename "$(readlink "$R$INSTALL_DIR/current" 2>/dev/null || echo none)")
if [[ "$CURRENT" == "$VERSION" ]]; then
    ok "current -> versions/$VERSION"
elif [[ "$CURRENT" == none ]]; then
    change "point $INSTALL_DIR/current at versions/$VERSION (first install)" "${UPDATE[@]}" adopt "$VERSION"
else
    # An installed system moves to the new version on trial: kept only if it reports healthy.
    change "switch from $CURRENT to $VERSION on trial (rolled back unless healthy)" "${UPDATE[@]}" activate "$VERSION"
    RESTART_NEEDED=1
fi

# --------------------------------------------------------------------------- 5. boot configuration

BOOT_CHANGES_BEFORE=$CHANGES
BOOT_CONFIG=""
for candidate in /boot/firmware/config.txt /boot/config.txt; do
    if [[ -f "$R$candidate" ]]; then BOOT_CONFIG=$candidate; break; fi
done
if [[ -z "$BOOT_CONFIG" ]]; then
    echo "skip: no /boot/firmware/config.txt or /boot/config.txt (not a Raspberry Pi image): I2C/UART not configured"
else
    if live && command -v raspi-config >/dev/null; then
        # raspi-config reports 0 for "enabled"; it also loads i2c-dev and fixes cmdline.txt.
        [[ "$(raspi-config nonint get_i2c)" == 0 ]] && ok "I2C enabled (raspi-config)" \
            || change "enable I2C" raspi-config nonint do_i2c 0
        [[ "$(raspi-config nonint get_serial_hw)" == 0 ]] && ok "UART enabled (raspi-config)" \
            || change "enable the UART" raspi-config nonint do_serial_hw 0
        [[ "$(raspi-config nonint get_serial_cons)" == 1 ]] && ok "serial console disabled (raspi-config)" \
            || change "disable the serial console on the radio UART" raspi-config nonint do_serial_cons 1
    fi
    set_boot_option "$R$BOOT_CONFIG" dtparam=i2c_arm on
    set_boot_option "$R$BOOT_CONFIG" enable_uart 1
    [[ $KEEP_BT == 1 ]] || ensure_line "$R$BOOT_CONFIG" "dtoverlay=disable-bt"
    CMDLINE="$R$(dirname "$BOOT_CONFIG")/cmdline.txt"
    if [[ -f "$CMDLINE" ]] && grep -Eq 'console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?' "$CMDLINE"; then
        change "remove the serial console from ${CMDLINE#"$R"}" \
            sed -i -E 's/console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?//g' "$CMDLINE"
    else
        ok "no serial console on the radio UART"
    fi
    [[ $CHANGES == "$BOOT_CHANGES_BEFORE" ]] || REBOOT_NEEDED=1
fi
for tty in serial0 ttyAMA0 ttyS0; do
    unit=/etc/systemd/system/serial-getty@$tty.service
    if [[ "$(readlink "$R$unit" 2>/dev/null)" == /dev/null ]]; then ok "serial-getty@$tty masked"
    else change "mask serial-getty@$tty (no login prompt on the radio UART)" ln -sfn /dev/null "$R$unit"; fi
done

# --------------------------------------------------------------------------- 6. services

WANTS="$R/etc/systemd/system/multi-user.target.wants"
for unit in flightsw.service flightsw-update.path; do
    if [[ -L "$WANTS/$unit" ]]; then ok "$unit enabled"
    elif command -v systemctl >/dev/null; then change "enable $unit" systemctl "--root=$ROOT" enable "$unit"
    else
        # No systemctl (a minimal chroot): what "enable" does for WantedBy=multi-user.target.
        change "enable $unit (link into multi-user.target.wants)" sh -c 'mkdir -p "$1" && ln -sfn "/etc/systemd/system/$2" "$1/$2"' _ "$WANTS" "$unit"
    fi
done
if live && [[ $DRY_RUN == 0 ]] && [[ -d /run/systemd/system ]]; then
    if [[ $FILES_CHANGED == 1 ]]; then
        change "reload systemd and udev" sh -c 'systemctl daemon-reload && udevadm control --reload && udevadm trigger --subsystem-match=tty'
    fi
    if [[ ${RESTART_NEEDED:-0} == 1 ]] || ! systemctl is-active --quiet flightsw.service; then
        change "start flightsw.service" systemctl restart --no-block flightsw.service
    fi
fi

# --------------------------------------------------------------------------- 7. read-only root (optional)

if [[ $OVERLAY_ROOT == 1 ]]; then
    if live && command -v raspi-config >/dev/null; then
        [[ "$(raspi-config nonint get_overlay_now)" == 0 ]] && ok "overlay root active" \
            || change "enable the read-only overlay root (takes effect at reboot)" raspi-config nonint do_overlayfs 0
    else
        echo "skip: --overlay-root needs raspi-config on the live system; see docs/deploy.md"
    fi
fi

echo "== $CHANGES change(s)$([[ $DRY_RUN == 1 ]] && echo ' would be made')"
[[ ${REBOOT_NEEDED:-0} == 0 || $DRY_RUN == 1 ]] || echo "note: boot configuration is applied at the next reboot"
