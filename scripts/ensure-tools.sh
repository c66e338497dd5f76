#!/usr/bin/env bash
# Installs what building (and, with `test`, testing) needs when it is
# missing, by package name only:
#   build: the wasm32 target, wasm-bindgen-cli at the version Cargo.lock pins
#   test:  also Debian's chromium + chromium-driver (browser tests),
#          postgresql (the suite runs on PostgreSQL too), dcmtk and
#          libgdcm-tools (independent DICOM readers and encoders), orthanc
#          and orthanc-dicomweb (a hospital archive as a peer), openssl
#          (the certificates of DICOM over TLS), npm (axe-core, the
#          accessibility checker),
#          python3-pydicom (its reader and its test files) and poppler-utils
#          (pdftotext reads the reports back); schemathesis and
#          dicomweb-client and Flower (federated/requirements.txt) in their
#          own virtual environments under target/,
#          axe-core under target/tools/axe
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-build}"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "== adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
    # Without --locked: one of its pinned dependencies is not served any more.
    echo "== installing wasm-bindgen-cli $want (have: ${have:-none}; about a minute)"
    # Unoptimised: it installs in 74 s (120 s of CPU) instead of about four
    # minutes, and still turns the bundle into JavaScript glue in 4.5 s
    # (0.8 s optimised), a fair trade on a first `make run`.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 cargo install wasm-bindgen-cli --version "$want"
fi

if [ "$mode" = test ]; then
    packages=()
    command -v chromium >/dev/null || packages+=(chromium)
    command -v chromedriver >/dev/null || packages+=(chromium-driver)
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)
    command -v dcmdjpls >/dev/null || packages+=(dcmtk)
    command -v gdcmconv >/dev/null || packages+=(libgdcm-tools)
    command -v pdftotext >/dev/null || packages+=(poppler-utils)
    [ -x /usr/sbin/Orthanc ] || packages+=(orthanc)
    command -v openssl >/dev/null || packages+=(openssl)
    command -v npm >/dev/null || packages+=(npm)
    [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || packages+=(orthanc-dicomweb)
    { python3 -c 'import pydicom' || /usr/bin/python3 -c 'import pydicom'; } 2>/dev/null || packages+=(python3-pydicom)
    python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
    if [ ${#packages[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "missing: ${packages[*]}; install them with: sudo apt-get install ${packages[*]}" >&2
            exit 1
        fi
        echo "== installing ${packages[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    fi
fi

if [ "$mode" = test ]; then
    # schemathesis, pinned, in its own virtual environment under target/.
    want_st=4.32.5
    st=target/tools/schemathesis
    if [ "$("$st/bin/schemathesis" --version 2>/dev/null | awk '{ print $3 }')" != "$want_st" ]; then
        echo "== installing schemathesis $want_st into $st"
        rm -rf "$st"
        python3 -m venv "$st"
        "$st/bin/pip" install -q "schemathesis==$want_st"
    fi
    # dicomweb-client (tests/tests/dicomweb.rs), pinned with what it pulls in.
    dw=target/tools/dicomweb
    if ! cmp -s tests/dicomweb/requirements.txt "$dw/requirements.txt"; then
        echo "== installing dicomweb-client into $dw"
        rm -rf "$dw"
        python3 -m venv "$dw"
        "$dw/bin/pip" install -q -r tests/dicomweb/requirements.txt
        cp tests/dicomweb/requirements.txt "$dw/requirements.txt"
    fi
    # Flower (tests/tests/federated.rs), pinned with what the federation's
    # apps import, in its own virtual environment.
    fl=target/tools/flower
    if ! cmp -s federated/requirements.txt "$fl/requirements.txt"; then
        echo "== installing Flower into $fl"
        rm -rf "$fl"
        python3 -m venv "$fl"
        "$fl/bin/pip" install -q -r federated/requirements.txt
        cp federated/requirements.txt "$fl/requirements.txt"
    fi
    # axe-core (the accessibility test in tests/tests/browser.rs), pinned,
    # from the npm registry.
    want_axe=4.14.1
    axe=target/tools/axe
    have_axe=$(node -p "require('./$axe/node_modules/axe-core/package.json').version" 2>/dev/null || true)
    if [ "$have_axe" != "$want_axe" ]; then
        echo "== installing axe-core $want_axe into $axe"
        rm -rf "$axe"
        mkdir -p "$axe"
        npm install --prefix "$axe" --no-audit --no-fund --no-update-notifier --silent "axe-core@$want_axe"
    fi
fi
