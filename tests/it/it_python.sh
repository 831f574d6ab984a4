#!/usr/bin/env bash
# Integration: the Python package (daemon/client/python) against the real
# daemon (CPU backend): numpy arrays, bfloat16 through .safetensors, progress,
# cancel, a failed job's reason, png directories; its own tests, run by
# python3 (pytest is not needed).  Then `pip install` of the package, where
# pip can build it offline.
. "$(dirname "$0")/lib.sh"
need_numpy
conf workers=2 slots=4 slot_bytes=1M
mkdir -p "$T/work"
# writes slowed: the cancel test needs a job that is still running when asked
export EGR_FAULT_WRITE_DELAY_MS=15
start_daemon
unset EGR_FAULT_WRITE_DELAY_MS
export EGRESSD_CONFIG="$T/egressd.ini" EGR_TEST_DIR="$T/work"
if python3 "$TOP/daemon/client/python/tests/test_egressd.py" >"$T/py.log" 2>&1; then
	ok "python package tests"
else
	fail "python package tests"
fi
cat "$T/py.log"
stop_daemon
check "the daemon stopped cleanly" true

# pip install ./daemon/client/python: offline, into a scratch target, from a
# copy (pip builds in the tree it is given)
if python3 -m pip --version >/dev/null 2>&1; then
	cp -r "$TOP/daemon/client/python" "$T/pkg"
	if python3 -m pip install -q --no-deps --no-build-isolation --no-index --target "$T/site" \
		"$T/pkg" >"$T/pip.log" 2>&1; then
		check "pip-installed package imports, with its version" \
			env PYTHONPATH="$T/site" python3 -c 'import egressd, sys; sys.exit(egressd.__version__ != "0.1.0" or not hasattr(egressd, "submit"))'
	else
		echo "note: pip could not build the package offline here (tests/deps.sh installs setuptools and wheel):"
		grep -m 3 -i error "$T/pip.log"
	fi
fi
finish
