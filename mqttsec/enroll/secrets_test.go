package enroll

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// findSecret walks everything reachable from v (unexported fields, maps,
// pointers, interfaces) and returns the path of every byte array, byte
// slice or string that holds one of needles.
func findSecret(v any, needles ...[]byte) []string {
	var found []string
	seen := map[uintptr]bool{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() || seen[v.Pointer()] {
				return
			}
			seen[v.Pointer()] = true
			walk(v.Elem(), path)
		case reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Array, reflect.Slice:
			if v.Kind() == reflect.Slice && v.IsNil() {
				return
			}
			if v.Type().Elem().Kind() == reflect.Uint8 {
				b := make([]byte, v.Len())
				for i := range b {
					b[i] = byte(v.Index(i).Uint())
				}
				for _, n := range needles {
					if bytes.Contains(b, n) {
						found = append(found, path)
					}
				}
				return
			}
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				walk(it.Key(), path+"{key}")
				walk(it.Value(), fmt.Sprintf("%s[%v]", path, it.Key()))
			}
		case reflect.String:
			for _, n := range needles {
				if strings.Contains(v.String(), string(n)) {
					found = append(found, path)
				}
			}
		}
	}
	walk(reflect.ValueOf(v), "")
	return found
}

// encodings are the forms a PoP could be written in.
func encodings(p PoP) [][]byte {
	return [][]byte{p[:], []byte(b64.EncodeToString(p[:])), []byte(hex.EncodeToString(p[:])),
		[]byte(strings.ToUpper(hex.EncodeToString(p[:])))}
}

// TestPoPNotKept: property 4. The registrar holds the PoP in the approval
// only, and only until it expires or is replaced; Add never gets it.
func TestPoPNotKept(t *testing.T) {
	w := newWorld(t)
	code := w.dev.Code(w.clock.Now())
	pop := encodings(code.PoP)
	at := func(stage string, want []string) {
		t.Helper()
		if got := findSecret(w.reg, pop...); !slices.Equal(got, want) {
			t.Fatalf("%s: the PoP is held at %q, want %q", stage, got, want)
		}
	}
	at("before the approval", nil)
	p, _ := FromCode(code, template).MarshalBinary()
	if err := approveAs(w.reg, operatorID, p, true); err != nil {
		t.Fatal(err)
	}
	held := []string{".approvals[door-7].pop"}
	at("approval pending", held)

	h := w.hello(w.dev)
	wb, err := handle(w.reg, h)
	if err != nil {
		t.Fatal(err)
	}
	// Completed, it keeps the PoP: a new hello (the device lost this
	// welcome) is checked and answered with it.
	at("approval completed", held)
	if _, err := handle(w.reg, h); err != nil {
		t.Fatal(err)
	}
	at("after a repeated hello", held)
	if got := findSecret(w.gw, pop...); got != nil {
		t.Fatalf("Add got the PoP: %q", got)
	}
	for name, b := range map[string][]byte{"hello": h, "welcome": wb} {
		if got := findSecret(b, pop...); got != nil {
			t.Fatalf("the %s holds the PoP", name)
		}
	}
	if _, err := w.dev.AcceptWelcome(wb); err != nil {
		t.Fatal(err)
	}
	// The device keeps its seed, not the PoPs of the hello it is done with.
	if got := findSecret(w.dev, pop...); got != nil {
		t.Fatalf("the device still holds the PoP at %q", got)
	}

	// Expired, it is gone (Stats drops expired approvals, as Approve and
	// HandleHello do).
	w.clock.Advance(DefaultTTL)
	w.reg.Stats()
	at("approval expired", nil)

	// Replaced, its PoP is cleared too.
	w.clock.Advance(time.Minute)
	code2 := w.dev.Code(w.clock.Now())
	p, _ = FromCode(code2, template).MarshalBinary()
	approveAs(w.reg, operatorID, p, true)
	w.reg.mu.Lock()
	old := w.reg.approvals["door-7"]
	w.reg.mu.Unlock()
	w.clock.Advance(time.Minute)
	code3 := w.dev.Code(w.clock.Now())
	p, _ = FromCode(code3, template).MarshalBinary()
	approveAs(w.reg, operatorID, p, true)
	if old.pop != (PoP{}) {
		t.Fatal("a replaced approval's PoP was not cleared")
	}
	if got := findSecret(w.reg, encodings(code2.PoP)...); got != nil {
		t.Fatalf("the replaced PoP is held at %q", got)
	}
	if got := findSecret(w.reg, encodings(code3.PoP)...); !slices.Equal(got, held) {
		t.Fatalf("the new PoP is held at %q", got)
	}
}

// TestPoPNotShown: property 4. No error of any refusal, on either side, and
// no printing of anything the package has, shows the PoP.
func TestPoPNotShown(t *testing.T) {
	w := newWorld(t)
	code := w.dev.Code(w.clock.Now())
	pop, popPrev := devicePoPs(w.dev, w.clock.Now())
	var needles []string
	for _, p := range []PoP{pop, popPrev} {
		for _, e := range encodings(p) {
			needles = append(needles, string(e))
		}
	}
	var errs []error
	collect := func(_ any, err error) { errs = append(errs, err) }

	approval := FromCode(code, template)
	payload, _ := approval.MarshalBinary()
	errs = append(errs,
		approveAs(w.reg, operatorID, payload, false),
		approveAs(w.reg, "intruder", payload, true),
		approveAs(w.reg, operatorID, payload[:len(payload)-1], true),
		approveAs(w.reg, operatorID, append(slices.Clone(payload), 0), true),
	)
	collect(ParseApproval(payload[:40]))
	unknown := *approval
	unknown.Template = "safe"
	up, _ := unknown.MarshalBinary()
	errs = append(errs, approveAs(w.reg, operatorID, up, true))
	text := code.Text()
	for _, bad := range []string{
		text + ":", text + "=", text[:len(text)-1], strings.Replace(text, ":1:", ":2:", 1), " " + text,
		strings.Replace(text, "door-7", "door 7", 1), text[:len(text)-1] + "_",
		strings.Replace(text, "mqttsec-enroll:1:door-7:", "mqttsec-enroll:1:door-7:x", 1),
	} {
		collect(ParseCode(bad))
	}

	w.mustApprove(w.dev, nil)
	h := w.hello(w.dev)
	g := helloParts(t, h)
	dev := testKey(t, "enroll device")
	for _, b := range [][]byte{
		append(slices.Clone(h), 0),
		forgeHello(t, "gateway-2", "door-7", g.pkD, g.nonce, g.nonceG, &pop, &popPrev, dev),
		forgeHello(t, gatewayID, "door-8", g.pkD, g.nonce, g.nonceG, &pop, &popPrev, dev),
		forgeHello(t, gatewayID, "door-7", pubBytes(t, testKey(t, "x")), g.nonce, g.nonceG, &pop, &popPrev, dev),
		forgeHello(t, gatewayID, "door-7", g.pkD, g.nonce, g.nonceG, nil, nil, dev),
		flip(h, -1),
	} {
		collect(handle(w.reg, b))
	}
	wb, err := handle(w.reg, h)
	if err != nil {
		t.Fatal(err)
	}
	wp := welcomeParts(t, wb)
	gk := testKey(t, "enroll gateway")
	for _, b := range [][]byte{
		append(slices.Clone(wb), 0),
		forgeWelcome(t, gatewayID, "door-7", wp.t, make([]byte, NonceSize), wp.pkG, 1, &pop, gk),
		forgeWelcome(t, gatewayID, "door-7", wp.t, wp.nonce, wp.pkG, 1, nil, gk),
		flip(wb, -1),
	} {
		collect(w.dev.AcceptWelcome(b))
	}
	for range DefaultBurst {
		collect(handle(w.reg, flip(h, -1)))
	}
	w.gw.addErr = fmt.Errorf("the keyring refused")
	d2 := newDevice(t, "door-9", "enroll other device")
	w.mustApprove(d2, nil)
	collect(handle(w.reg, w.hello(d2)))

	classes := map[error]bool{}
	for _, err := range errs {
		if err == nil {
			t.Fatal("a refusal without an error")
		}
		classes[Class(err)] = true
		if containsAny(err.Error(), needles...) {
			t.Errorf("error shows the PoP: %v", err)
		}
	}
	for _, c := range []error{ErrMalformed, ErrContext, ErrNoApproval, ErrThrottled, ErrFingerprint, ErrPoP,
		ErrSignature, ErrForbidden, ErrBadRequest, ErrInternal} {
		if !classes[c] {
			t.Errorf("no refusal of class %v was tried", c)
		}
	}

	// Printing: every verb, on everything that holds a PoP.
	var sb strings.Builder
	logger := slog.New(slog.NewJSONHandler(&sb, nil))
	textLogger := slog.New(slog.NewTextHandler(&sb, nil))
	type holder struct {
		Label string
		Code  Code
		Ptr   *Code
	}
	for _, v := range []any{pop, &pop, approval, *approval, w.dev, w.reg, w.reg.Stats(), Code{PoP: pop}.PoP,
		code, &code, holder{"shown", code, &code}, &holder{"shown", code, &code}, []Code{code}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
			if s := fmt.Sprintf(verb, v); containsAny(s, needles...) {
				t.Errorf("%s of %T shows the PoP: %s", verb, v, s)
			}
		}
		logger.Info("x", "v", v)
		textLogger.Info("x", "v", v)
		if js, err := json.Marshal(v); err == nil && containsAny(string(js), needles...) {
			t.Errorf("JSON of %T shows the PoP: %s", v, js)
		}
	}
	if containsAny(sb.String(), needles...) {
		t.Errorf("a log line shows the PoP: %s", sb.String())
	}
	// A Code is for showing: its Text is the one place the PoP is written.
	if !strings.Contains(code.Text(), b64.EncodeToString(code.PoP[:])) {
		t.Fatal("the code's text lacks its PoP")
	}
}
