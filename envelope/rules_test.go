package envelope_test

// The vectors against the reference reader of specref_test.go:
//
//   - TestSpecReference: the reader, with every rule on, gives each vector's
//     documented result (SPEC.md §11).
//   - TestRulesPinned: for each rule of SPEC.md §9.2, a reader with that one
//     rule switched off gives another outcome for at least one vector.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

const (
	srSpecPath    = "SPEC.md"
	srVectorDir   = "testdata/vectors"
	srKeysPath    = "testdata/vectors/keys.json"
	srReplayClass = "replayed"
)

// srUnpinnable are the rules SPEC.md §9.2 itself says no vector can show,
// with its reason, as SPEC.md words it. TestRulesPinned fails if SPEC.md
// stops saying so, or if a vector does pin one of them.
var srUnpinnable = map[string]string{
	"replay-floor": "need receiver state that the vector format cannot express",
	"replay-loss":  "need receiver state that the vector format cannot express",
	"replay-admit": "shows only with two copies opened at once, or in a receiver that skips step 9 where it may",
}

// srSpecRule is one row of the table of SPEC.md §9.2.
type srSpecRule struct {
	id, step, class string
}

// srSpecRules reads the ids, steps and classes of the table of SPEC.md §9.2,
// and the paragraph before it.
func srSpecRules(t *testing.T) (rules []srSpecRule, intro string) {
	t.Helper()
	raw, err := os.ReadFile(srSpecPath)
	if err != nil {
		t.Fatal(err)
	}
	spec := string(raw)
	start := strings.Index(spec, "### 9.2 Rules")
	if start < 0 {
		t.Fatal("SPEC.md has no \"### 9.2 Rules\"")
	}
	sec := spec[start:]
	if end := strings.Index(sec[1:], "\n## "); end >= 0 {
		sec = sec[:end+1]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\| ([0-9, ]+) \\| `([a-z-]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(sec, -1) {
		rules = append(rules, srSpecRule{id: m[1], step: strings.TrimSpace(m[2]), class: m[3]})
	}
	if len(rules) == 0 {
		t.Fatal("no rules found in SPEC.md §9.2")
	}
	if i := strings.Index(sec, "\n| id |"); i >= 0 {
		intro = sec[:i]
	}
	return rules, strings.Join(strings.Fields(intro), " ")
}

type srSuite struct {
	keys    *srKeys
	vectors []*srVector
	skipped []string
}

var (
	srSuiteOnce sync.Once
	srSuiteVal  *srSuite
	srSuiteErr  error
)

func srLoadSuite(t *testing.T) *srSuite {
	t.Helper()
	srSuiteOnce.Do(func() {
		s := &srSuite{}
		s.keys, srSuiteErr = srLoadKeys(srKeysPath)
		if srSuiteErr != nil {
			return
		}
		s.vectors, s.skipped, srSuiteErr = srLoadVectors(srVectorDir)
		srSuiteVal = s
	})
	if srSuiteErr != nil {
		t.Fatal(srSuiteErr)
	}
	if len(srSuiteVal.vectors) == 0 {
		t.Fatalf("no Envelope 1.0 vectors in %s (skipped: %v)", srVectorDir, srSuiteVal.skipped)
	}
	return srSuiteVal
}

// srOutcome is what a port shows for a vector (§11): the result of opening
// the envelope, the payload when it is ok, and then the result of opening it
// a second time.
func srOutcome(v *srVector, keys *srKeys, off map[string]bool) (string, error) {
	r, err := srNewReader(v, keys, off)
	if err != nil {
		return "", err
	}
	first := r.open(v.env)
	if first.class != "ok" {
		return first.class, nil
	}
	second := r.open(v.env)
	return fmt.Sprintf("ok payload=%x, then %s", first.payload, second.class), nil
}

// srDocumented is the outcome the vector documents.
func srDocumented(v *srVector) string {
	if v.Result != "ok" {
		return v.Result
	}
	p := ""
	if v.Payload != nil {
		p = strings.ToLower(*v.Payload)
	}
	return fmt.Sprintf("ok payload=%s, then %s", p, srReplayClass)
}

func TestSpecReference(t *testing.T) {
	s := srLoadSuite(t)
	for _, sk := range s.skipped {
		t.Logf("skipped %s", sk)
	}

	t.Run("key-ids", func(t *testing.T) {
		// §6 computed here against the keyIds and publicKeys of keys.json.
		for name, want := range s.keys.fileKeyIDs {
			got := s.keys.srKidOf(name)
			if got == nil {
				t.Errorf("keys.json keyIds names %q, which SPEC.md §11 does not list", name)
				continue
			}
			if w, err := srB64(want); err != nil || !bytes.Equal(w, got) {
				t.Errorf("key id of %s: computed %x, keys.json %s", name, got, want)
			}
		}
		for name, want := range s.keys.filePubs {
			var got []byte
			switch {
			case s.keys.identities[name] != nil:
				got = s.keys.identities[name].pub
			case s.keys.sig[name] != nil:
				got = s.keys.sig[name].pub
			default:
				t.Errorf("keys.json publicKeys names %q, which has no public key in SPEC.md §11", name)
				continue
			}
			if w, err := srB64(want); err != nil || !bytes.Equal(w, got) {
				t.Errorf("public key of %s differs from keys.json publicKeys", name)
			}
		}
		// §4.7: the X-Wing public key from the seed as SPEC.md describes it.
		if id := s.keys.identities["xwing"]; id != nil {
			pub, _, _, err := srXWingPublic(id.seed)
			if err != nil || !bytes.Equal(pub, id.pub) {
				t.Errorf("X-Wing public key per §4.7 differs from crypto/hpke's (err %v)", err)
			}
		}
	})

	for _, v := range s.vectors {
		t.Run(v.Name, func(t *testing.T) {
			r, err := srNewReader(v, s.keys, nil)
			if err != nil {
				t.Fatalf("%s: %v", v.file, err)
			}
			got := r.open(v.env)
			if got.class != v.Result {
				t.Fatalf("%s: got %v, vector says %s (rule %s)", v.file, got, v.Result, v.Rule)
			}
			if got.class != "ok" {
				if v.Rule != "" && !slices.Contains(strings.Split(got.rule, ": "), v.Rule) {
					t.Logf("%s: refused by %s, vector names %s (same class)", v.file, got.rule, v.Rule)
				}
				return
			}
			if v.Rule != "" {
				t.Errorf("%s: accepted vector names rule %s", v.file, v.Rule)
			}
			want := ""
			if v.Payload != nil {
				want = *v.Payload
			}
			if hex.EncodeToString(got.payload) != strings.ToLower(want) {
				t.Errorf("%s: payload %x, vector says %s", v.file, got.payload, want)
			}
			if v.Digest != "" && hex.EncodeToString(got.digest) != strings.ToLower(v.Digest) {
				t.Errorf("%s: digest %x, vector says %s", v.file, got.digest, v.Digest)
			}
			if again := r.open(v.env); again.class != srReplayClass {
				t.Errorf("%s: second open gave %v, want %s", v.file, again, srReplayClass)
			}
		})
	}

	t.Run("xwing-from-spec", func(t *testing.T) {
		// §4.7 as written, against crypto/hpke, on every X-Wing wrap the
		// receiver would unwrap.
		id := s.keys.identities["xwing"]
		if id == nil {
			t.Skip("no xwing key")
		}
		n := 0
		for _, v := range s.vectors {
			f := srReadFrame(v.env)
			if len(v.env) == 0 || v.env[0] != 0x01 || len(f.faults) != 0 {
				continue
			}
			h := srReadHeader(f.H)
			for _, w := range h.wraps {
				if w.alg != srWrapXWing || !bytes.Equal(w.kid, id.kid) || len(w.wk) != 1168 {
					continue
				}
				want, herr := srUnwrap(id, &w, false)
				got, serr := srXWingUnwrap(id.seed, w.wk)
				if (herr == nil) != (serr == nil) || !bytes.Equal(want, got) {
					t.Errorf("%s: §4.7 unwrap gives %x (%v), crypto/hpke %x (%v)", v.file, got, serr, want, herr)
				}
				n++
			}
		}
		t.Logf("%d X-Wing wraps unwrapped both ways", n)
	})
}

func TestRulesPinned(t *testing.T) {
	s := srLoadSuite(t)
	specRules, intro := srSpecRules(t)

	// The reader's table is SPEC.md's: the same ids, steps and classes.
	inSpec := map[string]bool{}
	for _, sr := range specRules {
		inSpec[sr.id] = true
		rr := srRuleByID[sr.id]
		switch {
		case rr == nil:
			t.Errorf("SPEC.md §9.2 rule %s has no check in the reference reader", sr.id)
		case rr.step != sr.step || rr.class != sr.class:
			t.Errorf("rule %s: reader has step %s class %s, SPEC.md step %s class %s", sr.id, rr.step, rr.class, sr.step, sr.class)
		}
	}
	for _, rr := range srRules {
		if !inSpec[rr.id] {
			t.Errorf("reader checks %s, which SPEC.md §9.2 does not list", rr.id)
		}
	}

	// The rules SPEC.md says no vector can show: it must still say so.
	const lead = "Every rule but three has at least one vector that only it refuses"
	if !strings.Contains(intro, lead) {
		t.Errorf("SPEC.md §9.2 no longer says %q", lead)
	}
	for id, reason := range srUnpinnable {
		if !strings.Contains(intro, "`"+id+"`") || !strings.Contains(intro, reason) {
			t.Errorf("SPEC.md §9.2 no longer says that %s %s", id, reason)
		}
	}

	// Only the vectors the full reader reproduces can tell anything.
	var usable []*srVector
	documented := map[*srVector]string{}
	for _, v := range s.vectors {
		got, err := srOutcome(v, s.keys, nil)
		if err != nil || got != srDocumented(v) {
			t.Logf("left out %s: reference reader gives %q (%v), vector %q", v.file, got, err, srDocumented(v))
			continue
		}
		usable = append(usable, v)
		documented[v] = got
	}

	noticed := make(map[string][]string, len(specRules))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, sr := range specRules {
		wg.Go(func() {
			off := map[string]bool{sr.id: true}
			var names []string
			for _, v := range usable {
				got, err := srOutcome(v, s.keys, off)
				if err != nil || got != documented[v] {
					names = append(names, v.Name)
				}
			}
			mu.Lock()
			noticed[sr.id] = names
			mu.Unlock()
		})
	}
	wg.Wait()

	var unpinned []string
	var table strings.Builder
	fmt.Fprintf(&table, "rule → vectors whose outcome changes with the rule switched off (%d vectors):\n", len(usable))
	for _, sr := range specRules {
		names := noticed[sr.id]
		reason, exempt := srUnpinnable[sr.id]
		switch {
		case exempt && len(names) > 0:
			t.Errorf("%s: SPEC.md says no vector can show it (%s), yet %v do", sr.id, reason, names)
		case exempt:
			fmt.Fprintf(&table, "  %-18s (none: SPEC.md §9.2: %s)\n", sr.id, reason)
			continue
		case len(names) == 0:
			unpinned = append(unpinned, sr.id)
		}
		fmt.Fprintf(&table, "  %-18s %d: %s\n", sr.id, len(names), strings.Join(names, ", "))
	}
	t.Log(table.String())

	// A vector names the rule it pins (§11). Where switching that rule off
	// does not change the vector's outcome (another rule of the same class
	// refuses it then), the vector pins nothing by itself: noted, not failed.
	alone := map[string][]string{}
	for _, v := range usable {
		if v.Rule != "" && !slices.Contains(noticed[v.Rule], v.Name) {
			alone[v.Rule] = append(alone[v.Rule], v.Name)
		}
	}
	if len(alone) > 0 {
		var b strings.Builder
		b.WriteString("vectors naming a rule whose switching off does not change them:\n")
		for _, sr := range specRules {
			if names := alone[sr.id]; len(names) > 0 {
				fmt.Fprintf(&b, "  %-18s %s\n", sr.id, strings.Join(names, ", "))
			}
		}
		t.Log(b.String())
	}
	if len(unpinned) > 0 {
		sort.Strings(unpinned)
		t.Errorf("rules no vector pins: %s", strings.Join(unpinned, ", "))
	}
}
