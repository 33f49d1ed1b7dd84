# Sourced by the scripts that run Windows binaries under wine (test-windows.sh,
# test-windows-addon.sh): sets WINEPREFIX (under ${MUXNET_TOOLS:-~/.cache/muxnet-tools}) and
# WINEDEBUG, and makes the prefix on first use (~10 s). Wine 8's new prefixes claim Windows 7,
# which Node 20 refuses: winecfg -v win10.
export WINEPREFIX=${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}/wine-prefix
export WINEDEBUG=-all
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "creating the wine prefix $WINEPREFIX" >&2
  mkdir -p "$WINEPREFIX"
  wineboot -i >/dev/null 2>&1
  wineserver -w
  wine winecfg -v win10 >/dev/null 2>&1
  wineserver -w
fi
