# Sourced by tests/interop.sh: the page of `buzon ui` in a real browser (Debian's headless
# Chromium, driven by playwright-core from npm) against a real `buzon serve`
# (tests/ui-browser/ui.test.mjs, run with node --test). The screenshots and the downloaded
# failed rows are kept in $ui_artifacts.

# The version whose browser protocol Debian's Chromium speaks here (checked with Chromium 156).
playwright_version=1.65.2
ui_artifacts=${INTEROP_ARTIFACTS:-$root/target/interop-artifacts}/ui

install_ui_tools() {
  if [ ! -x /usr/bin/chromium ]; then
    log "installing chromium with apt-get"
    [ "$(id -u)" = 0 ] || { echo "need root to apt-get install chromium" >&2; exit 2; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends chromium >>"$work/apt.log" 2>&1 || {
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends chromium >>"$work/apt.log" 2>&1 ||
        { cat "$work/apt.log" >&2; exit 2; }
    }
  fi
  command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "node and npm are needed for the browser tests" >&2; exit 2; }
  # Outside $work, so a second run on the same machine does not fetch it again.
  playwright_dir=${XDG_CACHE_HOME:-$HOME/.cache}/buzon-interop/playwright-$playwright_version
  if [ ! -f "$playwright_dir/node_modules/playwright-core/package.json" ]; then
    log "npm install playwright-core@$playwright_version"
    mkdir -p "$playwright_dir"
    (cd "$playwright_dir" && npm init -y >/dev/null &&
      npm install --silent --no-audit --no-fund "playwright-core@$playwright_version") \
      >"$work/npm.log" 2>&1 || { cat "$work/npm.log" >&2; exit 2; }
  fi
}

run_ui() {
  local rt=$1 dir=$work/ui-$1
  local storage=$dir/mail logf=$dir/server.log l=$work/$rt-ui-browser.log ui_log=$dir/ui.log
  mkdir -p "$dir"
  if ! start_server "$rt" "$storage" "$logf"; then
    fail "$rt: (x) buzon serve starts for the page's sends" "" "$logf"
    return
  fi
  "$buzon" ui --listen 127.0.0.1:0 --dir "$dir/campaign" --runtime "$rt" >"$ui_log" 2>&1 &
  local ui_pid=$! url="" i
  bg_pids+=("$ui_pid")
  for i in $(seq 1 100); do
    url=$(sed -n 's/^buzon ui: open //p' "$ui_log")
    [ -n "$url" ] && break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    fail "$rt: (x) buzon ui prints its address" "" "$ui_log"
    stop_server
    return
  fi
  rm -rf "$ui_artifacts"
  if UI_URL=$url MAIL_STORAGE=$storage MAIL_DOMAIN=localhost SMTP_PORT=$port \
      PLAYWRIGHT_DIR=$playwright_dir ARTIFACTS=$ui_artifacts \
      timeout 400 node --test "$root/tests/ui-browser/ui.test.mjs" >"$l" 2>&1; then
    pass "$rt: (x) Chromium: 50-row CSV, lint fixed, preview, test to self, send, stop, reload, resume, each row once, failed rows downloaded, nothing fetched from outside (screenshots in $ui_artifacts)"
  else
    fail "$rt: (x) Chromium drives buzon ui" "see the screenshots in $ui_artifacts" "$l"
  fi
  kill -TERM "$ui_pid" 2>/dev/null || true
  wait "$ui_pid" 2>/dev/null || true
  stop_server
}
