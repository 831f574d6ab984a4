#!/usr/bin/env bash
# Integration: the shipped service.  `make install DESTDIR=... PREFIX=/usr`
# puts the three daemon binaries (no developer tools), a unit whose paths
# follow PREFIX, and the sysusers.d and tmpfiles.d entries; the unit carries
# the directives the design needs (always checked); where systemd-analyze is
# installed, `verify` is clean on the installed unit, `security --offline`
# scores it at most 2.0, and sysusers/tmpfiles applied to the staged root
# give the user and the modes promised; `make uninstall` removes it all.
# Exits 77 after the directive checks when systemd-analyze is missing.
. "$(dirname "$0")/lib.sh"
R=$T/root
U=$R/usr/lib/systemd/system/egressd.service
TF=$R/usr/lib/tmpfiles.d/egressd.conf

make -s -C "$TOP" install INSTALL_FROM="$EGR_BIN" DESTDIR="$R" PREFIX=/usr >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; die "make install"; }
installed=$(cd "$R" && find . -type f | sort)
for f in usr/bin/egressd usr/bin/egressd-producer usr/bin/egressd-worker etc/egressd/egressd.ini \
	usr/lib/sysusers.d/egressd.conf usr/lib/tmpfiles.d/egressd.conf usr/share/doc/egressd/README.md; do
	check "installed $f" [ -f "$R/$f" ]
done
check "installed the unit" [ -f "$U" ]
check "no developer tools installed" test ! -e "$R/usr/bin/egressd-mklatents" -a ! -e "$R/usr/bin/egressd-mktaesd"
check "ExecStart follows PREFIX" grep -qx 'ExecStart=/usr/bin/egressd -c /etc/egressd/egressd.ini' "$U"
check "ExecStartPre checks the configuration" grep -qx 'ExecStartPre=/usr/bin/egressd -t -c /etc/egressd/egressd.ini' "$U"
check "no /usr/local left in the unit" bash -c "! grep -v '^#' '$U' | grep -q /usr/local"

# the directives the design rests on (README "The service" says why each)
for d in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=30s' 'User=egressd' 'Group=egressd' \
	'NoNewPrivileges=yes' 'CapabilityBoundingSet=' 'ProtectSystem=strict' 'PrivateNetwork=yes' \
	'RestrictAddressFamilies=AF_UNIX' 'PrivateDevices=no' 'DevicePolicy=closed' \
	'DeviceAllow=char-nvidia-frontend rw' 'DeviceAllow=char-nvidia-uvm rw' \
	'SystemCallFilter=@system-service' 'SystemCallFilter=~@privileged' 'ProcSubset=all' 'UMask=0027'; do
	check "unit: $d" grep -qx -- "$d" "$U"
done
spool=$(sed -n 's/^spool = //p' "$TOP/config/egressd.ini")
check "unit: ReadWritePaths= names the default spool ($spool)" grep -q "^ReadWritePaths=$spool\( \|$\)" "$U"
check "tmpfiles: the spool" grep -qE "^d $spool +0750 egressd egressd" "$TF"
for d in tmp incoming; do
	check "tmpfiles: $d/ is setgid, sticky, group-writable" grep -qE "^d $spool/$d +3770 egressd egressd" "$TF"
done
check "sysusers: the user egressd" grep -qE '^u egressd ' "$R/usr/lib/sysusers.d/egressd.conf"

if ! command -v systemd-analyze >/dev/null; then
	make -s -C "$TOP" uninstall DESTDIR="$R" PREFIX=/usr >/dev/null 2>&1
	[ $nfail = 0 ] || finish
	skip "systemd-analyze not installed (apt-get install systemd): directives checked; verify, security score not run"
fi

# io_uring stays allowed: @system-service includes @aio, which has it
check "@system-service includes @aio" bash -c "systemd-analyze syscall-filter @system-service 2>/dev/null | grep -qx '    @aio'"
check "@aio has io_uring_setup" bash -c "systemd-analyze syscall-filter @aio 2>/dev/null | grep -qw io_uring_setup"

# verify against the staged root, with the host's units for the targets it names
cp -rn /lib/systemd/system/. "$R/usr/lib/systemd/system/" 2>/dev/null
# the host's kill(1) for ExecReload=, as on any installed system
mkdir -p "$R/bin" && cp "$(type -P kill)" "$R/bin/kill"
out=$(cd / && systemd-analyze verify --root="$R" "$U" 2>&1); rc=$?
check "systemd-analyze verify is clean" test "$rc" = 0 -a -z "$out"
[ -n "$out" ] && echo "$out"
sec=$(cd / && systemd-analyze security --offline=true --root="$R" egressd.service 2>&1)
score=$(sed -n 's/.*Overall exposure level for egressd.service: \([0-9.]*\).*/\1/p' <<<"$sec")
echo "systemd-analyze security: exposure ${score:-?}"
check "exposure ${score:-?} <= 2.0" awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }'
[ -z "$score" ] && echo "$sec" | tail -n 5

if [ "$(id -u)" = 0 ]; then
	systemd-sysusers --root="$R" >/dev/null 2>&1
	check "sysusers creates egressd in the staged root" grep -q '^egressd:' "$R/etc/passwd"
	(cd / && systemd-tmpfiles --root="$R" --create egressd.conf) >/dev/null 2>&1
	uid=$(awk -F: '$1 == "egressd" { print $3 }' "$R/etc/passwd")
	for d in "$spool 750" "$spool/tmp 3770" "$spool/incoming 3770" "$spool/active 750" "$spool/done 2750" \
		"$spool/failed 2750" "/var/lib/egressd 2770"; do
		set -- $d
		check "tmpfiles: $1 mode $2, owner egressd" [ "$(stat -c '%a %u' "$R$1" 2>/dev/null)" = "$2 $uid" ]
	done
else
	echo "not root: sysusers/tmpfiles not applied to the staged root"
fi

make -s -C "$TOP" uninstall DESTDIR="$R" PREFIX=/usr >"$T/uninstall.log" 2>&1 || { cat "$T/uninstall.log"; fail "make uninstall"; }
left=$(cd "$R" && for f in $installed; do [ -e "$f" ] && echo "$f"; done)
check "make uninstall removed what install put" [ -z "$left" ]
[ -n "$left" ] && echo "left: $left"
finish
