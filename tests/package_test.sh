#!/usr/bin/env bash
# The Debian package, as an operator gets it:
#  1. cpack builds it; its contents, control files, man pages and unit are
#     checked (dpkg-deb, systemd-analyze verify and security, lintian);
#  2. dpkg installs an older version into a scratch root with the
#     maintainer scripts (--force-script-chrootless: they set up that root,
#     DPKG_ROOT, and leave this machine's systemd alone): the user, the
#     tokens file root:okrd 0640, the unit enabled;
#  3. there lies a log in the format from before the Merkle tree
#     (tests/fixtures/wave1),
#     and the current version is installed over the older one;
#  4. okrd starts from the installed paths with the unit's command line and
#     /etc/default/okrd, as the package's user with the unit's umask: it
#     brings the log up to today's format, verifies and serves it, and a
#     token made by the installed okrctl works after the unit's reload
#     (SIGHUP); the operator's edits survive the upgrade;
#  5. a purge removes the package and its tokens file and keeps the log.
#   tests/package_test.sh BUILD_DIR
set -euo pipefail

# dpkg --root, mount namespaces and chown need root: as tools/install-deps.sh
# does, ask sudo (without a prompt: ctest has no terminal).
if [ "$(id -u)" -ne 0 ]; then
  exec sudo -n bash "$0" "$@"
fi
build="$(realpath "$1")"
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
chmod 755 "$work"  # okrd's user walks through it to its state directory
okrd_pid=""
cleanup() {
  [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
  [ -z "$okrd_pid" ] || kill -9 "$okrd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "package_test: $*" >&2
  [ -f "$work/okrd.err" ] && tail -20 "$work/okrd.err" >&2
  exit 1
}
step() { echo "package_test: $*"; }

# 1. The package, and an older version of it to upgrade from.
step "building the package"
(cd "$build" && cpack -G DEB -B "$work/new" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack failed"; }
(cd "$build" && cpack -G DEB -B "$work/old" -D CPACK_PACKAGE_VERSION=0.0.9 >>"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack of the older version failed"; }
deb="$(ls "$work"/new/okrd_*_*.deb)"
old_deb="$(ls "$work"/old/okrd_0.0.9-1_*.deb)"
version="$(dpkg-deb -f "$deb" Version)"

step "checking the contents of $(basename "$deb")"
dpkg-deb --contents "$deb" | awk '{ print $1, $2, $6 }' >"$work/contents"
expect_entry() {  # MODE OWNER PATH
  grep -qxF -- "$1 $2 ./$3" "$work/contents" || fail "the package lacks $1 $2 $3"
}
expect_entry -rwxr-xr-x root/root usr/bin/okrd
expect_entry -rwxr-xr-x root/root usr/bin/okrctl
expect_entry -rw-r--r-- root/root lib/systemd/system/okrd.service
expect_entry -rw-r--r-- root/root etc/default/okrd
expect_entry drwxr-xr-x root/root etc/okrd/
expect_entry -rw-r--r-- root/root usr/lib/sysusers.d/okrd.conf
expect_entry -rw-r--r-- root/root usr/share/man/man1/okrd.1.gz
expect_entry -rw-r--r-- root/root usr/share/man/man1/okrctl.1.gz
expect_entry -rw-r--r-- root/root usr/share/doc/okrd/copyright
expect_entry -rw-r--r-- root/root usr/share/doc/okrd/changelog.Debian.gz
expect_entry -rw-r--r-- root/root usr/share/okrd/dashboard/index.html
expect_entry -rw-r--r-- root/root usr/share/okrd/monitoring/okrd-alerts.json
expect_entry -rw-r--r-- root/root usr/share/okrd/monitoring/okrd-grafana.json
# The tokens file is the operator's: made by postinst, never shipped.
if grep -q "etc/okrd/tokens" "$work/contents"; then fail "the package ships a tokens file"; fi
dpkg-deb -I "$deb" conffiles | grep -qxF /etc/default/okrd || fail "/etc/default/okrd is not a conffile"
dpkg-deb -f "$deb" Depends | grep -q "librocksdb" || fail "Depends lacks RocksDB: $(dpkg-deb -f "$deb" Depends)"
# Stripped, hardened binaries (lintian below checks the rest of Debian's rules).
dpkg-deb -x "$deb" "$work/unpacked"
for prog in okrd okrctl; do
  readelf -S "$work/unpacked/usr/bin/$prog" | grep -q '\.debug_info' && fail "$prog is not stripped"
  readelf -d "$work/unpacked/usr/bin/$prog" | grep -q 'BIND_NOW' || fail "$prog is not linked -z now"
done
# The man pages are okrd's own --help, with the package's files.
zcat "$work/unpacked/usr/share/man/man1/okrd.1.gz" >"$work/okrd.1"
grep -q 'replica\\-of' "$work/okrd.1" || fail "okrd(1) lacks --replica-of"
grep -q '/etc/okrd/tokens.json' "$work/okrd.1" || fail "okrd(1) lacks its FILES"
zcat "$work/unpacked/usr/share/man/man1/okrctl.1.gz" | grep -q 'okrctl' || fail "okrctl(1) is empty"
# The changelog names the package's version (lintian checks its form).
zcat "$work/unpacked/usr/share/doc/okrd/changelog.Debian.gz" | head -1 | grep -qF "okrd ($version)" ||
  fail "the changelog's first entry is not $version"

step "checking the unit with systemd-analyze"
unit="$work/unpacked/lib/systemd/system/okrd.service"
grep -qx "Type=notify" "$unit" || fail "the unit is not Type=notify"
grep -q "^WatchdogSec=" "$unit" || fail "the unit has no watchdog"
# Checked on this machine's systemd, the unit as shipped but for okrd's
# path (systemd-analyze checks that the programs it runs exist).
mkdir "$work/unit"
sed "s|^ExecStart=/usr/bin/okrd |ExecStart=$work/unpacked/usr/bin/okrd |" "$unit" >"$work/unit/okrd.service"
systemd-analyze verify --man=no "$work/unit/okrd.service" >"$work/verify.log" 2>&1 ||
  { cat "$work/verify.log"; fail "systemd-analyze verify refused the unit"; }
[ -s "$work/verify.log" ] && { cat "$work/verify.log"; fail "systemd-analyze verify warned"; }
exposure="$(systemd-analyze security --offline=true "$work/unit/okrd.service" 2>/dev/null |
  sed -n 's/.*Overall exposure level for okrd.service: \([0-9.]*\).*/\1/p')"
[ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level"
step "systemd-analyze security: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure is above 2.0"

step "lintian"
lintian --fail-on error,warning "$deb" >"$work/lintian.log" 2>&1 ||
  { cat "$work/lintian.log"; fail "lintian found errors or warnings"; }

# 2. The older version, installed into a scratch root.
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
dpkg_root() {
  # --force-depends: the scratch root's dpkg knows none of the libraries,
  # which this machine has.
  dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@" \
    >>"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg $* failed"; }
}
# Runs a command as on the installed system, whose user database names
# okrd's user and group: in a mount namespace of its own, with the scratch
# root's /etc/passwd and /etc/group over this machine's.
as_installed=(unshare -m sh -c 'mount --bind "$0/etc/passwd" /etc/passwd &&
  mount --bind "$0/etc/group" /etc/group && exec "$@"' "$root")
installed_version() {
  dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status} ${Version}' okrd 2>/dev/null || true
}
step "installing $(basename "$old_deb") into a scratch root"
dpkg_root -i "$old_deb"
[ "$(installed_version)" = "install ok installed 0.0.9-1" ] || fail "dpkg says: $(installed_version)"
user_line="$(grep '^okrd:' "$root/etc/passwd")" || fail "postinst made no user okrd"
uid="$(echo "$user_line" | cut -d: -f3)"
gid="$(echo "$user_line" | cut -d: -f4)"
[ "$(echo "$user_line" | cut -d: -f6)" = "/var/lib/okrd" ] || fail "okrd's home: $user_line"
[ "$uid" -lt 1000 ] && [ "$uid" -gt 0 ] || fail "okrd is not a system user: $user_line"
tokens="$root/etc/okrd/tokens.json"
[ "$(stat -c '%u:%g %a' "$tokens")" = "0:$gid 640" ] || fail "tokens file: $(stat -c '%u:%g %a' "$tokens")"
[ "$(readlink "$root/etc/systemd/system/multi-user.target.wants/okrd.service")" = \
  "/lib/systemd/system/okrd.service" ] || fail "postinst did not enable okrd.service"

# The operator's edits, which the upgrade must keep: the listening address
# (any free port, for this test) in the conffile, and a token.
sed -i 's|^OKRD_OPTS=.*|OKRD_OPTS="--listen 127.0.0.1:0 --snapshot-every 100"|' "$root/etc/default/okrd"
made="$("${as_installed[@]}" "$root/usr/bin/okrctl" token new --actor ops.admin --role admin --file "$tokens")" ||
  fail "okrctl token new failed"
token="$(echo "$made" | grep -o 'okr_[0-9a-f]\{64\}' | head -1)"
[ -n "$token" ] || fail "okrctl token new printed no token: $made"
[ "$(stat -c '%u:%g %a' "$tokens")" = "0:$gid 640" ] || fail "okrctl changed the tokens file's owner or mode"
cp -p "$tokens" "$work/tokens.before"

# 3. A log an okrd before the Merkle tree left in the state directory, as systemd
# makes it (StateDirectory=okrd, 0750, the service's user).
install -d -m 0750 -o "$uid" -g "$gid" "$root/var/lib/okrd"
cp -r "$src/tests/fixtures/wave1/data" "$root/var/lib/okrd/data"
chown -R "$uid:$gid" "$root/var/lib/okrd"
chmod -R o-rwx "$root/var/lib/okrd"  # the unit's umask

step "upgrading to $(basename "$deb")"
dpkg_root -i "$deb"
[ "$(installed_version)" = "install ok installed $version" ] || fail "dpkg says: $(installed_version)"
grep -qx 'OKRD_OPTS="--listen 127.0.0.1:0 --snapshot-every 100"' "$root/etc/default/okrd" ||
  fail "the upgrade lost the edit of /etc/default/okrd"
cmp -s "$tokens" "$work/tokens.before" || fail "the upgrade changed the tokens file"
[ "$(stat -c '%u:%g %a' "$tokens")" = "0:$gid 640" ] || fail "the upgrade changed the tokens file's mode"

# 4. okrd as the unit starts it: its ExecStart, with OKRD_OPTS from
# /etc/default/okrd, every path under the scratch root.
unit="$root/lib/systemd/system/okrd.service"
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
OKRD_OPTS="$(. "$root/etc/default/okrd" && echo "$OKRD_OPTS")"
umask_value="$(sed -n 's/^UMask=//p' "$unit")"
command_line="${exec_start//\$OKRD_OPTS/$OKRD_OPTS}"
read -r -a argv <<<"$command_line"
for i in "${!argv[@]}"; do
  case "${argv[$i]}" in /usr/* | /var/* | /etc/*) argv[$i]="$root${argv[$i]}" ;; esac
done
start_okrd() {
  : >"$work/okrd.out"
  (umask "$umask_value" && exec "${as_installed[@]}" setpriv --reuid="$uid" --regid="$gid" --clear-groups "${argv[@]}") \
    >"$work/okrd.out" 2>"$work/okrd.err" &
  okrd_pid=$!
  for _ in $(seq 600); do
    url="$(sed -n 's/^okrd listening on //p' "$work/okrd.out")"
    [ -n "$url" ] && return 0
    kill -0 "$okrd_pid" 2>/dev/null || fail "okrd exited at start"
    sleep 0.1
  done
  fail "okrd did not listen within a minute"
}
stop_okrd() {
  kill -TERM "$okrd_pid"
  wait "$okrd_pid" || fail "okrd did not stop cleanly on SIGTERM (exit $?)"
  okrd_pid=""
}
get() { curl -sS --max-time 20 "$@"; }

step "starting okrd as the unit does: ${argv[*]#$root}"
start_okrd
health="$(get "$url/healthz")"
echo "$health" | grep -q '"status":"ok"' || fail "/healthz: $health"
# The fixture's 221 events, and the signing key okrd recorded at its first
# open: the format grew, and the open brought the log up to it.
echo "$health" | grep -q '"head_seq":222' || fail "/healthz: $health"
[ -f "$root/var/lib/okrd/data.signing.key" ] || fail "no signing key beside the data directory"
[ "$(stat -c '%u %a' "$root/var/lib/okrd/data.keys")" = "$uid 700" ] ||
  fail "key store: $(stat -c '%u %a' "$root/var/lib/okrd/data.keys")"
[ "$(stat -c '%u %a' "$root/var/lib/okrd/data.signing.key")" = "$uid 600" ] ||
  fail "signing key: $(stat -c '%u %a' "$root/var/lib/okrd/data.signing.key")"
verify="$(get "$url/v1/audit/verify" -H "Authorization: Bearer $token")"
echo "$verify" | grep -q '"ok":true' || fail "verify: $verify"
echo "$verify" | grep -q '"events":222' || fail "verify: $verify"
unit_answer="$(get "$url/v1/units/ana.silva?as_of=221")"
echo "$unit_answer" | grep -q '"email":"ana.silva@acme.example"' || fail "a fixture read: $unit_answer"
get "$url/v1/log/checkpoint" | head -1 | grep -q '^okrd/' || fail "no checkpoint served"
get "$url/" | grep -qi '<html' || fail "the installed dashboard is not served at /"

# A token made now works after the unit's reload (ExecReload: SIGHUP).
second="$("${as_installed[@]}" "$root/usr/bin/okrctl" token new --actor ops.second --role admin --file "$tokens" |
  grep -o 'okr_[0-9a-f]\{64\}' | head -1)"
write() {
  get -o /dev/null -w '%{http_code}' -X POST "$url/v1/units" -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' \
    -d "{\"id\":\"$2\",\"kind\":\"department\",\"name\":\"Operations\",\"parent\":\"acme\"}"
}
[ "$(write "$second" ops)" = 401 ] || fail "a token worked before the reload"
reload="$(sed -n 's/^ExecReload=//p' "$unit")"
[ "$reload" = '/bin/kill -HUP $MAINPID' ] || fail "ExecReload is $reload"
kill -HUP "$okrd_pid"
for _ in $(seq 100); do
  code="$(write "$second" ops)"
  [ "$code" = 201 ] && break
  sleep 0.1
done
[ "$code" = 201 ] || fail "the new token got $code after the reload"
stop_okrd
[ -z "$(find "$root/var/lib/okrd" ! -user "$uid")" ] || fail "okrd left files its user does not own"
[ -z "$(find "$root/var/lib/okrd" -perm /o=rwx)" ] || fail "okrd left files others may read"

step "restarting: the same log, nothing migrated twice"
start_okrd
get "$url/healthz" | grep -q '"head_seq":223' || fail "after a restart: $(get "$url/healthz")"
stop_okrd

# 5. Purge: the package and its tokens file go; the log stays.
step "purging the package"
dpkg_root --purge okrd
[ -z "$(installed_version | grep installed || true)" ] || fail "still installed: $(installed_version)"
[ ! -e "$root/usr/bin/okrd" ] || fail "purge left /usr/bin/okrd"
[ ! -e "$tokens" ] || fail "purge left the tokens file"
[ ! -e "$root/etc/default/okrd" ] || fail "purge left /etc/default/okrd"
[ ! -e "$root/etc/okrd" ] || fail "purge left /etc/okrd"
[ -d "$root/var/lib/okrd/data" ] || fail "purge removed the log"
step "ok"
