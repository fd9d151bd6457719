#!/bin/sh
# Generates the speech fixtures under test/fixtures/speech/: short synthetic sentences as
# Twilio hears them (8 kHz mono G.711 mu-law, headerless .ulaw) plus index.json with the text
# of each clip and, for flite clips, where each word lies in the audio.
#
# Word times come from the synthesiser itself, not from the recogniser under test: flite
# -psdur prints the end time of every phone; each word's phone count (flite run on the word
# alone) tells which phones belong to which word. The script stops if the counts disagree.
# sox's rate conversion is linear-phase with its delay compensated, so the times hold at 8 kHz.
#
# Needs flite, espeak-ng and sox. The output is committed; rerun only to change the set.
# Usage: scripts/make-speech-fixtures.sh [outdir]
set -eu

out=${1:-"$(dirname "$0")/../test/fixtures/speech"}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for tool in flite espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make-speech-fixtures: $tool is not installed" >&2; exit 1; }
done

entries=""

# Prints "word start end" lines (seconds) for TEXT spoken by flite VOICE, from -psdur.
flite_word_times() {
  voice=$1 text=$2
  flite -voice "$voice" -psdur -t "$text" -o /dev/null | tr ' ' '\n' | grep . > "$tmp/phones"
  : > "$tmp/counts"
  for w in $text; do
    n=$(flite -voice "$voice" -psdur -t "$w" -o /dev/null | tr ' ' '\n' | grep . | grep -vc '^pau:')
    echo "$w $n" >> "$tmp/counts"
  done
  awk -F: '
    NR == FNR { split($0, a, " "); words[++nw] = a[1]; need[nw] = a[2]; next }
    { name[++np] = $1; end[np] = $2 }
    END {
      w = 1; have = 0; prev = 0
      for (i = 1; i <= np; i++) {
        if (name[i] == "pau") { prev = end[i]; continue }
        if (have == 0) start = prev
        have++
        if (have == need[w]) { printf "%s %.3f %.3f\n", words[w], start, end[i]; w++; have = 0 }
        prev = end[i]
      }
      if (w != nw + 1 || have != 0) { print "phone count mismatch" > "/dev/stderr"; exit 1 }
    }' "$tmp/counts" "$tmp/phones"
}

# add NAME ENGINE VOICE "TEXT" KIND: synthesises, converts to 8 kHz mu-law, records the entry.
add() {
  name=$1 engine=$2 voice=$3 text=$4 kind=$5
  case $engine in
    flite) flite -voice "$voice" -t "$text" -o "$tmp/$name.wav" ;;
    espeak-ng) espeak-ng -v "$voice" -w "$tmp/$name.wav" "$text" ;;
  esac
  # -D: no dither, so the clips are the same bytes on every run (dither is random).
  sox -D "$tmp/$name.wav" -r 8000 -c 1 -e mu-law -t raw "$out/$name.ulaw"
  bytes=$(wc -c < "$out/$name.ulaw")
  words=""
  if [ "$engine" = flite ]; then
    words=$(flite_word_times "$voice" "$text" |
      awk '{ printf "%s{\"word\":\"%s\",\"startMs\":%d,\"endMs\":%d}", (NR > 1 ? "," : ""), $1, $2 * 1000 + 0.5, $3 * 1000 + 0.5 }')
    words=",\"words\":[$words]"
  fi
  entry="{\"file\":\"$name.ulaw\",\"kind\":\"$kind\",\"engine\":\"$engine\",\"voice\":\"$voice\",\"text\":\"$text\",\"durationMs\":$((bytes / 8))$words}"
  entries="${entries:+$entries,
    }$entry"
}

# Warm-up clip the engine decodes (and discards) when a recogniser process starts.
add primer flite rms "good morning" primer
# Word-error-rate set: common words, 8-13 per sentence. wer-1 is the one the unit test uses.
add wer-1 flite rms "i would like to order a large pizza for dinner tonight" wer
add wer-2 flite rms "please call me back when you have time to talk about the plan" wer
add wer-3 flite rms "we will meet at the office tomorrow morning at nine" wer
add wer-4 flite rms "my flight was delayed so i will be late for the meeting" wer
add wer-5 flite rms "the weather today is sunny with a light breeze from the west" wer
# Phrase spotting: the rule phrase in two synthesisers, unrelated sentences, and near misses
# that share most of the phrase's sounds (bench only: reported, not asserted).
add phrase-flite flite rms "okay everyone i think we can end the conference now" phrase
add phrase-espeak espeak-ng en "okay everyone i think we can end the conference now" phrase
add phrase-flite-2 flite awb "i think it is time to end the conference" phrase
add phrase-espeak-2 espeak-ng en "let us end the conference here" phrase
add phrase-espeak-3 espeak-ng en-us "thanks alice that sounds good we can end the conference now" phrase
add other-flite flite rms "please send the report to the finance team by friday" other
add other-espeak espeak-ng en "hello this is alice calling about the quarterly report" other
add other-espeak-2 espeak-ng en-us "the weather today is sunny with a light breeze from the west" other
add near-attend flite rms "did you attend the conference in berlin last year" near-miss
add near-contract flite rms "we need to send the contract before the weekend" near-miss
# The two parties of the demo conference (different voices); B says the rule phrase.
add demo-alice flite awb "hello this is alice calling about the quarterly report" demo
add demo-bob flite rms "thanks alice that sounds good we can end the conference now" demo

printf '{\n  "format": "headerless G.711 mu-law, 8000 Hz, mono",\n  "generator": "scripts/make-speech-fixtures.sh",\n  "clips": [\n    %s\n  ]\n}\n' "$entries" > "$out/index.json"
echo "wrote $(ls "$out" | wc -l) files to $out ($(du -sk "$out" | cut -f1) KB)"
