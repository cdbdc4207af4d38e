#!/usr/bin/env bash
# Seed the fuzz corpus from ../shared/corpus at run time (never committed): the corpus's small
# images that the pixel stage decodes (by magic bytes), at most 400 of them.
# Usage: bash host/pixels/fuzz/seed.sh   (from the repository root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${PROOFPIX_CORPUS:-$here/../../../../shared/corpus}
[ -d "$src" ] || { echo "corpus not found at $src"; exit 0; }
mkdir -p "$here/corpus/analyze"
find "$src" -type f -size -256k -not -path '*/golden/*' | sort | while read -r f; do
  case "$(head -c 4 "$f" | xxd -p)" in
    89504e47|ffd8ff*|47494638|52494646|424d*|49492a00|4d4d002a) ;;
    *) case "$(head -c 2 "$f" | xxd -p)" in ffd8|424d) ;; *) continue ;; esac ;;
  esac
  cp -f "$f" "$here/corpus/analyze/$(sha1sum "$f" | cut -c1-16)"
done
ls "$here/corpus/analyze" | sort | tail -n +401 | sed "s|^|$here/corpus/analyze/|" | xargs -r rm -f
echo "seeded: $(ls "$here/corpus/analyze" | wc -l) files"
