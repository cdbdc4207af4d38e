#!/usr/bin/env bash
# Seed the fuzz corpora from ../shared/corpus at run time (never committed), by container type.
# Usage: bash host/analysis/fuzz/seed.sh   (from the repository root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${PROOFPIX_CORPUS:-$here/../../../../shared/corpus}
[ -d "$src" ] || { echo "corpus not found at $src"; exit 0; }
magic() { # target, hex magic prefix
  local t=$1 m=$2; mkdir -p "$here/corpus/$t"
  find "$src" -type f -size -2048k | while read -r f; do
    if [ "$(head -c $(( ${#m} / 2 )) "$f" | xxd -p)" = "$m" ]; then cp -f "$f" "$here/corpus/$t/$(sha1sum "$f" | cut -c1-16)"; fi
  done
}
magic jpeg ffd8ff
magic png 89504e470d0a1a0a
magic webp 52494646
magic tiff 49492a00
magic bmff 00000018
magic flir 46464600   # FLIR FFF record files (flirpy frames)
# FLIR FPF files: the bytes after their 24-byte signature (the flir target puts it back).
find "$src" -type f -size -2048k | while read -r f; do
  if [ "$(head -c 24 "$f" | xxd -p)" = "465046205075626c696320496d61676520466f726d617400" ]; then
    tail -c +25 "$f" > "$here/corpus/flir/$(sha1sum "$f" | cut -c1-16)"
  fi
done
# The analyze target reads its first byte as the mode (odd: deep), so each file gets one in
# front: 0 or 1 by its hash, half of the seeds in each mode.
mkdir -p "$here/corpus/analyze" "$here/corpus/strip"
find "$src" -type f -size -1024k -not -path '*/golden/*' | while read -r f; do
  h=$(sha1sum "$f" | cut -c1-16); cp -f "$f" "$here/corpus/strip/$h"
  { printf "\\00$(( 0x${h:15:1} & 1 ))"; cat "$f"; } > "$here/corpus/analyze/$h"
done
# QuickTime seeds: every ISO-BMFF file (ftyp at 4), with a 0 first byte (the target's
# "top-level boxes" wrapper).
mkdir -p "$here/corpus/quicktime"
find "$src" -type f -size -2048k | while read -r f; do
  if [ "$(head -c 8 "$f" | tail -c 4 | xxd -p)" = "66747970" ]; then
    { printf '\000'; cat "$f"; } > "$here/corpus/quicktime/$(sha1sum "$f" | cut -c1-16)"
  fi
done
# EXIF/XMP seeds: the APP1 payloads of the corpus JPEGs; FPXR seeds: their APP2 FPXR records.
mkdir -p "$here/corpus/exif" "$here/corpus/xmp" "$here/corpus/makernote" "$here/corpus/fpxr"
python3 - "$src" "$here/corpus" <<'PY'
import os, sys, hashlib
src, out = sys.argv[1], sys.argv[2]
for root, _, files in os.walk(src):
    for name in files:
        p = os.path.join(root, name)
        try:
            d = open(p, 'rb').read(1 << 20)
        except OSError:
            continue
        if not d.startswith(b'\xff\xd8'):
            continue
        i = 2
        fpxr = []
        while i + 4 <= len(d) and d[i] == 0xff:
            m, l = d[i + 1], int.from_bytes(d[i + 2:i + 4], 'big')
            seg = d[i + 4:i + 2 + l]
            h = hashlib.sha1(seg).hexdigest()[:16]
            if m == 0xe1 and seg.startswith(b'Exif\0'):
                open(os.path.join(out, 'exif', h), 'wb').write(seg[6:])
                open(os.path.join(out, 'makernote', h), 'wb').write(b'\0\0' + seg[6:])
            if m == 0xe1 and seg.startswith(b'http://ns.adobe.com/xap/1.0/\0'):
                open(os.path.join(out, 'xmp', h), 'wb').write(seg[29:])
            if m == 0xe2 and seg.startswith(b'FPXR\0'):
                fpxr.append(len(seg) - 5)
                fpxr.append(seg[5:])
            if m == 0xda:
                break
            i += 2 + l
        if fpxr:
            rec = b''.join(x.to_bytes(2, 'big') if isinstance(x, int) else x for x in fpxr)
            open(os.path.join(out, 'fpxr', hashlib.sha1(rec).hexdigest()[:16]), 'wb').write(rec)
PY
# GoPro seeds, built here (the corpus has no GoPro video): a movie with a udta GPMF box and a
# gpmd track of two samples (quicktime target, wrapper 0: top-level boxes), one GPMF sample
# alone (quicktime wrapper 4: a gpmd track around it) and as APP6 (vendor wrapper 1).
python3 - "$here/corpus" <<'PY'
import os, struct, sys
out = sys.argv[1]
def bx(t, b): return struct.pack('>I', len(b) + 8) + t + b
def klv(k, t, s, c, d):
    v = k + bytes([t, s]) + struct.pack('>H', c) + d
    return v + b'\0' * (-len(v) % 4)
def sample(lat, lon):
    strm = klv(b'STNM', ord('c'), 1, 3, b'GPS') + klv(b'GPSF', ord('L'), 4, 1, struct.pack('>I', 3))
    strm += klv(b'SCAL', ord('l'), 4, 5, struct.pack('>5i', 10000000, 10000000, 1000, 1000, 100))
    strm += klv(b'GPS5', ord('l'), 20, 1, struct.pack('>5i', int(lat * 1e7), int(lon * 1e7), 35000, 0, 0))
    gps9 = klv(b'TYPE', ord('c'), 1, 9, b'lllllllSS') + klv(b'SCAL', ord('l'), 4, 1, struct.pack('>i', 10000000))
    gps9 += klv(b'GPS9', ord('?'), 32, 1, struct.pack('>7i2H', int(lat * 1e7), int(lon * 1e7), 0, 0, 0, 0, 0, 0, 3))
    devc = klv(b'DVNM', ord('c'), 1, 6, b'Camera') + klv(b'CASN', ord('c'), 1, 14, b'C3441325123456')
    devc += klv(b'MUID', ord('L'), 4, 2, struct.pack('>2I', 1, 2))
    devc += klv(b'STRM', 0, 4, len(strm) // 4, strm) + klv(b'STRM', 0, 4, len(gps9) // 4, gps9)
    return klv(b'DEVC', 0, 4, len(devc) // 4, devc)
s1, s2 = sample(-33.8568, 151.2153), sample(0, 0)
def movie(off):
    full = lambda t, *w: bx(t, struct.pack('>%dI' % len(w), *w))
    stsd = bx(b'stsd', struct.pack('>II', 0, 1) + bx(b'gpmd', struct.pack('>6xH4x', 1)))
    stbl = stsd + full(b'stsc', 0, 1, 1, 1, 1) + full(b'stsz', 0, 0, 2, len(s1), len(s2))
    stbl += full(b'stco', 0, 2, off, off + len(s1))
    mdia = bx(b'hdlr', b'\0' * 8 + b'meta' + b'\0' * 12 + b'GoPro MET\0') + bx(b'minf', bx(b'stbl', stbl))
    moov = bx(b'trak', bx(b'mdia', mdia)) + bx(b'udta', bx(b'GPMF', sample(1, 2)))
    return bx(b'ftyp', b'mp41\0\0\0\0mp41isom') + bx(b'moov', moov)
head = len(movie(0)) + 8
open(os.path.join(out, 'quicktime', 'gopro-gpmd'), 'wb').write(b'\0' + movie(head) + bx(b'mdat', s1 + s2))
open(os.path.join(out, 'quicktime', 'gopro-sample'), 'wb').write(b'\4' + s1)
os.makedirs(os.path.join(out, 'vendor'), exist_ok=True)
open(os.path.join(out, 'vendor', 'gopro-app6'), 'wb').write(b'\1' + s1)
PY
echo "seeded: $(ls "$here/corpus" | tr '\n' ' ')"
