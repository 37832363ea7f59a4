#!/bin/sh
# Installs netboot as four systemd services (and netboot.target) on this machine.
#
#   sudo systemd/install.sh                 copy this checkout to /opt/netboot, install, enable, start
#   sudo systemd/install.sh --prefix DIR    copy it to DIR instead
#   sudo systemd/install.sh --in-place      run from this checkout where it is (not under /home:
#                                           the units' ProtectHome= hides it)
#   systemd/install.sh --root STAGE         write everything under STAGE (a packaging or test
#                                           root): no user, no systemctl, root not needed
#   --no-start                              install and enable, but do not start now
#
# Run `npm ci` in the checkout first (the copy takes node_modules along). Needs Node 20 or newer
# as `node` on the PATH. Creates the `netboot` system user, /var/lib/netboot (its only writable
# folder), /etc/netboot/netboot.toml if there is none (an existing one is never touched), the
# `netboot` command in /usr/local/bin, and the units in /etc/systemd/system.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd -P)
prefix=/opt/netboot
root=
in_place=no
start=yes

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --root) root=${2:?--root needs a folder}; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --in-place) in_place=yes; shift ;;
    --no-start) start=no; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

[ -n "$root" ] || [ "$(id -u)" = 0 ] || fail "must run as root (or stage with --root DIR)"
[ -n "$root" ] && root=$(mkdir -p "$root" && cd "$root" && pwd -P)
if [ "$in_place" = yes ]; then
  prefix=$src
  case "$prefix" in /home/*|/root/*|/run/user/*) fail "$prefix is hidden from the services by ProtectHome=; install a copy (drop --in-place)" ;; esac
fi
case "$prefix" in /*) ;; *) fail "--prefix must be an absolute path" ;; esac
[ "$prefix" != / ] || fail "--prefix / is not a place for netboot"

command -v node >/dev/null 2>&1 || fail "node not found on the PATH (Node 20 or newer is needed)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || fail "Node $(node --version) is too old (20 or newer is needed)"
[ -f "$src/node_modules/tsx/dist/loader.mjs" ] || fail "$src/node_modules is missing: run npm ci in $src first"

# 1. The program: a copy of the checkout (without its history, tests and local data), swapped in
#    whole so that a running install never sees half of a new one.
if [ "$in_place" = no ]; then
  dest=$root$prefix
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest.new" "$dest.old"
  mkdir "$dest.new"
  tar -C "$src" --exclude=./.git --exclude=./var --exclude=./test --exclude=./bench --exclude=./.ci -cf - . | tar -C "$dest.new" --no-same-owner -xf -
  chmod -R u+rwX,go+rX,go-w "$dest.new"
  [ -e "$dest" ] && mv "$dest" "$dest.old"
  mv "$dest.new" "$dest"
  rm -rf "$dest.old"
  say "installed the program in $dest"
fi
mkdir -p "$root/usr/local/bin"
ln -sfn "$prefix/bin/netboot" "$root/usr/local/bin/netboot"

# 2. The user and its data folder.
if [ -z "$root" ]; then
  if ! getent passwd netboot >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/netboot --no-create-home --shell /usr/sbin/nologin --comment "netboot PXE services" netboot
    say "created the system user netboot"
  fi
  install -d -o netboot -g netboot -m 0750 /var/lib/netboot
else
  install -d -m 0750 "$root/var/lib/netboot"
fi

# 3. A default configuration, only if there is none.
conf=$root/etc/netboot/netboot.toml
install -d -m 0755 "$root/etc/netboot"
if [ ! -e "$conf" ]; then
  site=$(hostname 2>/dev/null | tr -c 'A-Za-z0-9._\n-' '-' | cut -c1-64)
  cat > "$conf.tmp" <<EOF
# netboot configuration, written by systemd/install.sh. Every key and its default: README.md.
# Check it with: netboot config check /etc/netboot/netboot.toml

[paths]
# The services may write only here (the units' ReadWritePaths=); the SBS folder, the SBS store
# and the TFTP root live inside it by default.
data = "/var/lib/netboot"

[log]
level = "info"

[site]
id = "${site:-netboot}"

# The address the PXE server advertises: its interface's, or one given outright.
# [server]
# interface = "eth0"
# address = "192.0.2.10"

# A management server, if this site has one; without it the SBS folder is the only input.
# [management]
# url = "https://management.example.net"
EOF
  check=$("$src/bin/netboot" config check "$conf.tmp" 2>&1) || fail "the default configuration does not validate: $check"
  if [ -z "$root" ]; then chgrp netboot "$conf.tmp"; fi
  chmod 0640 "$conf.tmp"
  mv "$conf.tmp" "$conf"
  say "wrote a default configuration to /etc/netboot/netboot.toml"
else
  say "kept the existing /etc/netboot/netboot.toml"
fi

# 4. The units, pointing at the program where it now is.
units="netboot-interface.service netboot-signal.service netboot-server.service netboot-mtftp.service netboot.target"
install -d -m 0755 "$root/etc/systemd/system"
for unit in $units; do
  sed "s|/opt/netboot/|$prefix/|g" "$src/systemd/$unit" > "$root/etc/systemd/system/$unit.tmp"
  chmod 0644 "$root/etc/systemd/system/$unit.tmp"
  mv "$root/etc/systemd/system/$unit.tmp" "$root/etc/systemd/system/$unit"
done
say "installed the units in /etc/systemd/system: $units"

if [ -n "$root" ]; then
  say "staged under $root (no user created, systemd not told)"
  exit 0
fi

systemctl daemon-reload
# shellcheck disable=SC2086
systemctl enable $units
if [ "$start" = yes ]; then
  # --no-block: the server stays "activating" until it holds its first complete state.
  systemctl restart --no-block netboot.target
  say "started netboot.target; see: systemctl status 'netboot-*' and: sudo netboot status"
else
  say "enabled; start with: systemctl start --no-block netboot.target"
fi
