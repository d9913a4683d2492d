package enroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the generator")

const vectorPath = "testdata/vectors.json"

// The vector file: one genuine exchange, stated by its inputs and every
// value derived from them, and refusals, each one change to the exchange.
// Bytes are lowercase hex (SPEC.md §1). ECDSA signatures are randomized: a
// port checks them by verifying, and compares the bytes before them.
type vectorFile struct {
	Comment  string          `json:"comment"`
	Inputs   vectorInputs    `json:"inputs"`
	Expected vectorExpected  `json:"expected"`
	Codes    []codeVector    `json:"codes"`
	Refusals []refusalVector `json:"refusals"`
}

type vectorInputs struct {
	// Private keys are the 32-byte scalars. TEST KEYS ONLY.
	DeviceKey       string `json:"deviceKey"`
	GatewayKey      string `json:"gatewayKey"`
	OtherDeviceKey  string `json:"otherDeviceKey"`
	OtherGatewayKey string `json:"otherGatewayKey"`
	PoPSeed         string `json:"popSeed"`
	WindowSeconds   int64  `json:"windowSeconds"`
	// Time is t in seconds: the device's clock at the code and the
	// hello, and the gateway's at the approval and the hello.
	Time       int64    `json:"time"`
	DeviceID   string   `json:"deviceId"`
	GatewayID  string   `json:"gatewayId"`
	Operator   string   `json:"operator"`
	Templates  []string `json:"templates"` // the templates the gateway knows
	Template   string   `json:"template"`
	Assign     string   `json:"assign"`
	TTLSeconds uint32   `json:"ttlSeconds"`
	// ApprovalCounter is the approval request's envelope counter.
	ApprovalCounter uint64 `json:"approvalCounter"`
	// FirstNonce is nonceD of the device's first hello (nonceG zero), and
	// Nonce that of its hello after the challenge.
	FirstNonce string `json:"firstNonce"`
	Nonce      string `json:"nonce"`
	// GatewayNonce is the nonceG the gateway drew for the approval.
	GatewayNonce   string `json:"gatewayNonce"`
	HighestCounter uint64 `json:"highestCounter"` // what the gateway accepted from the assigned id
}

type vectorExpected struct {
	DevicePublic     string `json:"devicePublic"`
	GatewayPublic    string `json:"gatewayPublic"`
	Fingerprint      string `json:"fingerprint"`
	Window           uint64 `json:"window"`
	PoP              string `json:"pop"`     // PoP_w
	PoPPrev          string `json:"popPrev"` // PoP_{w-1}
	Code             string `json:"code"`
	Approval         string `json:"approval"`     // the payload
	FirstHello       string `json:"firstHello"`   // nonceG zero
	Challenge        string `json:"challenge"`    // the gateway's answer to it
	HelloT           string `json:"helloT"`       // of the hello carrying nonceG
	HelloTag         string `json:"helloTag"`     // tag_w
	HelloTagPrev     string `json:"helloTagPrev"` // tag_{w-1}
	HelloSignature   string `json:"helloSignature"`
	Hello            string `json:"hello"`
	AssignedID       string `json:"assignedId"`
	CounterFloor     uint64 `json:"counterFloor"`
	WelcomeT2        string `json:"welcomeT2"`
	WelcomeTag       string `json:"welcomeTag"`
	WelcomeSignature string `json:"welcomeSignature"`
	Welcome          string `json:"welcome"`
}

// codeVector is a code's text and what ParseCode makes of it.
type codeVector struct {
	Name        string `json:"name"`
	Text        string `json:"text"`
	Result      string `json:"result"` // "ok" or a class
	ID          string `json:"id,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	PoP         string `json:"pop,omitempty"`
}

// refusalVector is an input refused with a class, or answered with a
// challenge (result "challenge", the challenge in output). To says who
// receives it: "gateway" (a hello, the registrar holding the approval of
// expected.approval, or of approval when set, made at inputs.time with
// nonceG inputs.gatewayNonce, or gatewayNonce when set, and having handled
// expected.hello priorHellos times at that instant; after says what
// changed at the gateway between the approval and the hello: "revoked",
// the device's key was revoked, or "withdrawn", the operator may no longer
// approve), "device" (a welcome, the device waiting on expected.hello),
// or "approve" (an approval's payload, from operator or inputs.operator,
// encrypted unless notEncrypted, with counter inputs.approvalCounter; the
// gateway holding the device's key as revoked if revoked, knowing the
// assigned id, which the operator may not re-enroll, if knownId, and
// having taken expected.approval from the same operator with counter
// priorCounter first if that is set).
type refusalVector struct {
	Name         string `json:"name"`
	Desc         string `json:"desc"`
	To           string `json:"to"`
	Approval     string `json:"approval,omitempty"`
	GatewayNonce string `json:"gatewayNonce,omitempty"`
	PriorHellos  int    `json:"priorHellos,omitempty"`
	After        string `json:"after,omitempty"`
	Operator     string `json:"operator,omitempty"`
	NotEncrypted bool   `json:"notEncrypted,omitempty"`
	Revoked      bool   `json:"revoked,omitempty"`
	KnownID      bool   `json:"knownId,omitempty"`
	PriorCounter uint64 `json:"priorCounter,omitempty"`
	Input        string `json:"input"`
	Result       string `json:"result"`
	Output       string `json:"output,omitempty"`
}

// --- the generator ---

func vectorSecret(label string) []byte {
	s := sha256.Sum256([]byte("mqttsec test key: " + label))
	return s[:]
}

// reseed makes the randomness (ECDSA signatures) a function of name.
func reseed(t *testing.T, name string) {
	s := sha256.Sum256([]byte("enroll vector: " + name))
	cryptotest.SetGlobalRandom(t, binary.BigEndian.Uint64(s[:8]))
}

// vectorWorld is the parties of a vector file: keys, a device with the
// file's seed, a registrar at the file's time.
type vectorWorld struct {
	in                         vectorInputs
	dev, gw, otherDev, otherGw *ecdsa.PrivateKey
	now                        time.Time
}

func newVectorWorld(t testing.TB, in vectorInputs) *vectorWorld {
	t.Helper()
	key := func(h string) *ecdsa.PrivateKey {
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), unhex(t, h))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return &vectorWorld{in: in, dev: key(in.DeviceKey), gw: key(in.GatewayKey), otherDev: key(in.OtherDeviceKey),
		otherGw: key(in.OtherGatewayKey), now: time.Unix(in.Time, 0)}
}

// device returns a Device with the file's key, seed and window.
func (vw *vectorWorld) device(t testing.TB) *Device {
	t.Helper()
	d, err := NewDevice(DeviceConfig{ID: vw.in.DeviceID, Key: vw.dev, Window: time.Duration(vw.in.WindowSeconds) * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	copy(d.seed[:], unhex(t, vw.in.PoPSeed))
	return d
}

// registrar returns a Registrar at the file's time, and its gateway.
func (vw *vectorWorld) registrar(t testing.TB) (*Registrar, *gateway) {
	t.Helper()
	gw := &gateway{highest: map[string]uint64{vw.assigned(): vw.in.HighestCounter}}
	r, err := NewRegistrar(RegistrarConfig{ID: vw.in.GatewayID, Key: vw.gw, Templates: vw.in.Templates,
		MayApprove: func(id string) bool { return id == vw.in.Operator },
		Known:      gw.Known, MayReenroll: func(string, string) bool { return false }, Revoked: gw.Revoked,
		Add: gw.Add, HighestCounter: gw.HighestCounter, Clock: func() time.Time { return vw.now }})
	if err != nil {
		t.Fatal(err)
	}
	return r, gw
}

// approve has r take payload from inputs.operator with inputs.approvalCounter
// and sets the approval's nonceG to inputs.gatewayNonce (the gateway's
// draw).
func (vw *vectorWorld) approve(t testing.TB, r *Registrar, payload []byte) {
	t.Helper()
	if err := r.Approve(ApprovalRequest{Operator: vw.in.Operator, Counter: vw.in.ApprovalCounter, Encrypted: true, Payload: payload}); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	setNonceG(t, r, vw.in.DeviceID, unhex(t, vw.in.GatewayNonce))
}

// setNonceG sets the nonceG of r's approval for id.
func setNonceG(t testing.TB, r *Registrar, id string, n []byte) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.approvals[id]
	if a == nil {
		t.Fatalf("no approval for %s", id)
	}
	a.nonceG = [NonceSize]byte(n)
}

func (vw *vectorWorld) assigned() string {
	if vw.in.Assign != "" {
		return vw.in.Assign
	}
	return vw.in.DeviceID
}

func vectorInputsDefault() vectorInputs {
	return vectorInputs{
		DeviceKey:       hex.EncodeToString(vectorSecret("enroll device")),
		GatewayKey:      hex.EncodeToString(vectorSecret("enroll gateway")),
		OtherDeviceKey:  hex.EncodeToString(vectorSecret("enroll other device")),
		OtherGatewayKey: hex.EncodeToString(vectorSecret("enroll other gateway")),
		PoPSeed:         hex.EncodeToString(vectorSecret("enroll pop seed")),
		WindowSeconds:   30,
		Time:            1767225645, // 2026-01-01T00:00:45Z: 15 s into window 58907521
		DeviceID:        "door-7",
		GatewayID:       "gateway",
		Operator:        "ops-console",
		Templates:       []string{"door"},
		Template:        "door",
		Assign:          "lobby-door-7",
		TTLSeconds:      0,
		ApprovalCounter: 7,
		FirstNonce:      hex.EncodeToString(vectorSecret("enroll first nonce")[:NonceSize]),
		Nonce:           hex.EncodeToString(vectorSecret("enroll nonce")[:NonceSize]),
		GatewayNonce:    hex.EncodeToString(vectorSecret("enroll gateway nonce")[:NonceSize]),
		HighestCounter:  41,
	}
}

// generateVectors makes the vector file with the package's own code.
func generateVectors(t *testing.T) *vectorFile {
	in := vectorInputsDefault()
	vw := newVectorWorld(t, in)
	d := vw.device(t)
	x := vectorExpected{}
	x.DevicePublic = hex.EncodeToString(pubBytes(t, vw.dev))
	x.GatewayPublic = hex.EncodeToString(pubBytes(t, vw.gw))
	fp := d.Fingerprint()
	x.Fingerprint = hex.EncodeToString(fp[:])
	x.Window = Window(vw.now, d.window)
	pop, popPrev := devicePoPs(d, vw.now)
	x.PoP, x.PoPPrev = hex.EncodeToString(pop[:]), hex.EncodeToString(popPrev[:])
	code := d.Code(vw.now)
	x.Code = code.Text()
	a := FromCode(code, in.Template)
	a.Assign, a.TTL = in.Assign, time.Duration(in.TTLSeconds)*time.Second
	payload, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	x.Approval = hex.EncodeToString(payload)

	r, _ := vw.registrar(t)
	vw.approve(t, r, payload)
	reseed(t, "first hello")
	first, err := d.hello(vw.now, in.GatewayID, [NonceSize]byte(unhex(t, in.FirstNonce)))
	if err != nil {
		t.Fatal(err)
	}
	x.FirstHello = hex.EncodeToString(first)
	c, kind, err := r.HandleHello(first)
	if err != nil || kind != ReplyChallenge {
		t.Fatalf("the first hello: %v, %v", kind, err)
	}
	x.Challenge = hex.EncodeToString(c)
	if err := d.AcceptChallenge(c); err != nil {
		t.Fatal(err)
	}

	reseed(t, "hello")
	nonce := [NonceSize]byte(unhex(t, in.Nonce))
	hb, err := d.hello(vw.now, in.GatewayID, nonce)
	if err != nil {
		t.Fatal(err)
	}
	h := helloParts(t, hb)
	T := digest(helloLabel, h.body)
	x.HelloT, x.HelloTag, x.HelloTagPrev = hex.EncodeToString(T[:]), hex.EncodeToString(h.tagW), hex.EncodeToString(h.tagPrior)
	x.HelloSignature, x.Hello = hex.EncodeToString(h.sig), hex.EncodeToString(hb)

	reseed(t, "welcome")
	wb, err := handle(r, hb)
	if err != nil {
		t.Fatal(err)
	}
	wl := welcomeParts(t, wb)
	T2 := digest(welcomeLabel, wl.body)
	x.AssignedID, x.CounterFloor = string(wl.assigned), wl.floor
	x.WelcomeT2, x.WelcomeTag, x.WelcomeSignature = hex.EncodeToString(T2[:]), hex.EncodeToString(wl.tag), hex.EncodeToString(wl.sigG)
	x.Welcome = hex.EncodeToString(wb)

	f := &vectorFile{
		Comment: "TEST KEYS ONLY. Enrollment 1 (envelope/SPEC.md §14): one exchange, from its inputs to every value " +
			"derived from them (the first hello, the gateway's challenge, the hello carrying its nonceG, the welcome), " +
			"then codes and refusals. Bytes are lowercase hex; private keys are P-256 scalars. " +
			"ECDSA signatures are randomized: check them by verifying (ES256, r || s over SHA-256 of the label, 0x00 " +
			"and T or T2), and the bytes before them by comparing. A refusal's result is the class its receiver " +
			"reports, or 'challenge'; 'to' says who receives it (see the package's vectors_test.go).",
		Inputs: in, Expected: x,
	}
	f.Codes = generateCodeVectors(t, code)
	f.Refusals = generateRefusals(t, vw, &x, d, h, wl, hb, wb, payload)
	cryptotest.SetGlobalRandom(t, 0)
	return f
}

func generateCodeVectors(t *testing.T, code Code) []codeVector {
	good := code.Text()
	f64 := b64.EncodeToString(code.Fingerprint[:])
	colon := code
	colon.ID = "site:door:7"
	p64 := b64.EncodeToString(code.PoP[:])
	last := p64[len(p64)-1]
	// The PoP's last character with a low bit set that the 128 bits
	// leave unused (a non-canonical encoding).
	nonCanon := good[:len(good)-1] + string(b64Alphabet[b64Index(last)|1])
	if nonCanon == good {
		nonCanon = good[:len(good)-1] + string(b64Alphabet[b64Index(last)|2])
	}
	out := []codeVector{
		{Name: "code", Text: good},
		{Name: "code-id-with-colons", Text: colon.Text()},
		{Name: "code-version-2", Text: "mqttsec-enroll:2:" + good[len("mqttsec-enroll:1:"):]},
		{Name: "code-padded", Text: good + "=="},
		{Name: "code-pop-short", Text: good[:len(good)-1]},
		{Name: "code-pop-non-canonical", Text: nonCanon},
		{Name: "code-id-space", Text: "mqttsec-enroll:1:door 7:" + good[len("mqttsec-enroll:1:door-7:"):]},
		{Name: "code-line-end", Text: good + "\n"},
		{Name: "code-pop-crlf-inside", Text: good[:len(good)-12] + "\r\n" + good[len(good)-10:]},
		{Name: "code-fingerprint-lf-inside", Text: strings.Replace(good, ":"+f64, ":\n"+f64[1:], 1)},
	}
	for i := range out {
		c, err := ParseCode(out[i].Text)
		if (err == nil) != (i < 2) {
			t.Fatalf("%s: %v", out[i].Name, err)
		}
		if err != nil {
			out[i].Result = Class(err).(Error).Name()
			continue
		}
		out[i].Result, out[i].ID = "ok", c.ID
		out[i].Fingerprint, out[i].PoP = hex.EncodeToString(c.Fingerprint[:]), hex.EncodeToString(c.PoP[:])
	}
	return out
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func b64Index(c byte) int { return bytes.IndexByte([]byte(b64Alphabet), c) }

func generateRefusals(t *testing.T, vw *vectorWorld, x *vectorExpected, d *Device, h *hello, wl *welcome, hb, wb, payload []byte) []refusalVector {
	in := vw.in
	pop, popPrev := devicePoPs(d, vw.now)
	var out []refusalVector
	add := func(name, to, desc string, input []byte, edit func(*refusalVector)) {
		reseed(t, name)
		v := refusalVector{Name: name, Desc: desc, To: to, Input: hex.EncodeToString(input)}
		if edit != nil {
			edit(&v)
		}
		out = append(out, v)
	}
	dev := vw.dev
	hello := func(gw, id string, pkD []byte, p, pp *PoP, key *ecdsa.PrivateKey) []byte {
		reseed(t, "hello "+gw+id+hex.EncodeToString(pkD))
		return forgeHello(t, gw, id, pkD, h.nonce, h.nonceG, p, pp, key)
	}
	keepTags := func(b []byte) []byte {
		copy(b[len(b)-sigSize-2*tagSize:], h.tagW)
		copy(b[len(b)-sigSize-tagSize:], h.tagPrior)
		return b
	}
	// To the gateway.
	add("hello-513-bytes", "gateway", "the hello followed by zero bytes up to 513 bytes",
		append(slices.Clone(hb), make([]byte, 513-len(hb))...), nil)
	add("hello-trailing-byte", "gateway", "the hello and one zero byte", append(slices.Clone(hb), 0), nil)
	add("hello-cut", "gateway", "the hello without its last byte", hb[:len(hb)-1], nil)
	add("hello-first-byte", "gateway", "the hello with first byte 0xE2", append([]byte{welcomeByte}, hb[1:]...), nil)
	add("hello-id-not-valid", "gateway", "a hello from id 'door 7' (a space), tagged and signed",
		hello(in.GatewayID, "door 7", h.pkD, &pop, &popPrev, dev), nil)
	pk02 := slices.Clone(h.pkD)
	pk02[0] = 0x02
	add("hello-key-prefix", "gateway", "a hello whose pkD begins 0x02, tagged and signed",
		hello(in.GatewayID, in.DeviceID, pk02, &pop, &popPrev, dev), nil)
	add("hello-other-gateway", "gateway", "a hello to 'gateway-2', tagged and signed",
		hello("gateway-2", in.DeviceID, h.pkD, &pop, &popPrev, dev), nil)
	add("hello-no-approval", "gateway", "a hello from 'door-8', which has no approval, tagged and signed",
		hello(in.GatewayID, "door-8", h.pkD, &pop, &popPrev, dev), nil)
	add("hello-throttled", "gateway", "the hello, after the gateway handled it 10 times (the burst) at the same instant",
		hb, func(v *refusalVector) { v.PriorHellos = DefaultBurst })
	otherPub := pubBytes(t, vw.otherDev)
	add("hello-no-challenge", "gateway", "the first hello (nonceG zero): answered with the challenge",
		unhex(t, x.FirstHello), func(v *refusalVector) { v.Output = x.Challenge })
	laterNonce := vectorSecret("enroll later gateway nonce")[:NonceSize]
	add("hello-earlier-approval", "gateway", "the hello, recorded under the approval, replayed to the gateway holding a "+
		"later approval for the id, whose nonceG is gatewayNonce: answered with a challenge, never a welcome",
		hb, func(v *refusalVector) {
			v.GatewayNonce = hex.EncodeToString(laterNonce)
			v.Output = hex.EncodeToString(challengeBytes(in.GatewayID, in.DeviceID, laterNonce))
		})
	add("hello-key-revoked", "gateway", "the hello, the device's key revoked after the approval", hb,
		func(v *refusalVector) { v.After = "revoked" })
	add("hello-operator-withdrawn", "gateway", "the hello, the operator no longer allowed to approve after the approval", hb,
		func(v *refusalVector) { v.After = "withdrawn" })
	add("hello-other-device-key", "gateway", "the broker's key (otherDeviceKey) in the hello, signed by it, with the hello's tags",
		keepTags(hello(in.GatewayID, in.DeviceID, otherPub, nil, nil, vw.otherDev)), nil)
	old := DerivePoP(d.seed[:], Window(vw.now, d.window)-2)
	oldPayload := slices.Clone(payload)
	copy(oldPayload[2+len(in.DeviceID)+FingerprintSize:], old[:])
	add("hello-code-too-old", "gateway", "the hello, the approval made from the code of window w-2 (a photo 2N old)",
		hb, func(v *refusalVector) { v.Approval = hex.EncodeToString(oldPayload) })
	tagsFlipped := slices.Clone(hb)
	tagsFlipped[len(h.body)] ^= 1
	tagsFlipped[len(h.body)+tagSize] ^= 1
	add("hello-tags-flipped", "gateway", "the hello with the lowest bit of each tag's first byte flipped",
		tagsFlipped, nil)
	add("hello-signature-flipped", "gateway", "the hello with the lowest bit of its last byte flipped", flip(hb, -1), nil)
	reseed(t, "hello-signature-other-key sig")
	otherSig := slices.Concat(hb[:len(hb)-sigSize], signWith(t, vw.otherDev, helloSigLabel, digestSlice(helloLabel, h.body)))
	add("hello-signature-other-key", "gateway", "the hello signed by otherDeviceKey instead", otherSig, nil)

	// To the device.
	gwPub := pubBytes(t, vw.gw)
	welcome := func(gw, assigned string, T, nonce, pkG []byte, floor uint64, p *PoP, key *ecdsa.PrivateKey) []byte {
		reseed(t, "welcome "+gw+assigned+hex.EncodeToString(nonce)+hex.EncodeToString(pkG))
		return forgeWelcome(t, gw, assigned, T, nonce, pkG, floor, p, key)
	}
	add("welcome-trailing-byte", "device", "the welcome and one zero byte", append(slices.Clone(wb), 0), nil)
	add("welcome-first-byte", "device", "the welcome with first byte 0xE1", append([]byte{helloByte}, wb[1:]...), nil)
	add("welcome-floor-zero", "device", "a welcome with counter floor 0, tagged and signed",
		welcome(in.GatewayID, vw.assigned(), wl.t, wl.nonce, gwPub, 0, &pop, vw.gw), nil)
	add("welcome-other-nonce", "device", "a welcome for another nonce (all zero), tagged and signed",
		welcome(in.GatewayID, vw.assigned(), wl.t, make([]byte, NonceSize), gwPub, wl.floor, &pop, vw.gw), nil)
	add("welcome-other-gateway", "device", "a welcome from 'gateway-2', tagged and signed",
		welcome("gateway-2", vw.assigned(), wl.t, wl.nonce, gwPub, wl.floor, &pop, vw.gw), nil)
	subst := welcome(in.GatewayID, vw.assigned(), wl.t, wl.nonce, pubBytes(t, vw.otherGw), wl.floor, nil, vw.otherGw)
	copy(subst[len(subst)-sigSize-tagSize:], wl.tag)
	add("welcome-other-gateway-key", "device", "the broker's key (otherGatewayKey) in the welcome, signed by it, with the welcome's tag",
		subst, nil)
	add("welcome-signature-flipped", "device", "the welcome with the lowest bit of its last byte flipped", flip(wb, -1), nil)

	// Approvals.
	add("approval-not-encrypted", "approve", "the approval, in a request that was not encrypted", payload,
		func(v *refusalVector) { v.NotEncrypted = true })
	add("approval-operator", "approve", "the approval, from 'door-9', which may not approve", payload,
		func(v *refusalVector) { v.Operator = "door-9" })
	add("approval-version-2", "approve", "the approval with first byte 0x02", append([]byte{2}, payload[1:]...), nil)
	add("approval-trailing-byte", "approve", "the approval and one zero byte", append(slices.Clone(payload), 0), nil)
	ttl := slices.Clone(payload)
	binary.BigEndian.PutUint32(ttl[len(ttl)-4:], 3601)
	add("approval-ttl-3601", "approve", "the approval with ttl_s 3601", ttl, nil)
	unknown := &Approval{ID: in.DeviceID, Fingerprint: Fingerprint(h.pkD), PoP: pop, Template: "safe"}
	up, err := unknown.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	add("approval-unknown-template", "approve", "the approval naming template 'safe', which the gateway does not know", up, nil)
	badID := slices.Concat([]byte{1, 6}, []byte("door 7"), payload[2+len(in.DeviceID):])
	add("approval-id-not-valid", "approve", "the approval for id 'door 7' (a space)", badID, nil)
	assigning := func(id string) []byte {
		a := &Approval{ID: in.DeviceID, Fingerprint: Fingerprint(h.pkD), PoP: pop, Template: in.Template, Assign: id}
		b, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	add("approval-assigns-gateway-id", "approve", "the approval assigning the gateway's id", assigning(in.GatewayID), nil)
	add("approval-assigns-operator-id", "approve", "the approval assigning the operator's own id", assigning(in.Operator), nil)
	add("approval-key-revoked", "approve", "the approval, the device's key revoked", payload,
		func(v *refusalVector) { v.Revoked = true })
	add("approval-known-id", "approve", "the approval, its assigned id known and the operator not allowed to re-enroll it",
		payload, func(v *refusalVector) { v.KnownID = true })
	add("approval-stale", "approve", "the approval, after the same approval from the same operator with a higher counter",
		payload, func(v *refusalVector) { v.PriorCounter = in.ApprovalCounter + 1 })
	add("approval-same-counter", "approve", "the approval, after the same approval from the same operator with the same counter",
		payload, func(v *refusalVector) { v.PriorCounter = in.ApprovalCounter })

	// The result of each is what the package answers, which must be what
	// SPEC.md §14 says.
	spec := map[string]string{
		"hello-513-bytes":              "malformed",
		"hello-trailing-byte":          "malformed",
		"hello-cut":                    "malformed",
		"hello-first-byte":             "malformed",
		"hello-id-not-valid":           "malformed",
		"hello-key-prefix":             "malformed",
		"hello-other-gateway":          "context",
		"hello-no-approval":            "no-approval",
		"hello-throttled":              "throttled",
		"hello-no-challenge":           "challenge",
		"hello-earlier-approval":       "challenge",
		"hello-key-revoked":            "forbidden",
		"hello-operator-withdrawn":     "forbidden",
		"approval-assigns-gateway-id":  "bad-request",
		"approval-assigns-operator-id": "forbidden",
		"approval-key-revoked":         "forbidden",
		"approval-known-id":            "forbidden",
		"approval-stale":               "bad-request",
		"approval-same-counter":        "bad-request",
		"hello-other-device-key":       "fingerprint",
		"hello-code-too-old":           "pop",
		"hello-tags-flipped":           "pop",
		"hello-signature-flipped":      "signature",
		"hello-signature-other-key":    "signature",
		"welcome-trailing-byte":        "malformed",
		"welcome-first-byte":           "malformed",
		"welcome-floor-zero":           "malformed",
		"welcome-other-nonce":          "context",
		"welcome-other-gateway":        "context",
		"welcome-other-gateway-key":    "pop",
		"welcome-signature-flipped":    "signature",
		"approval-not-encrypted":       "forbidden",
		"approval-operator":            "forbidden",
		"approval-version-2":           "bad-request",
		"approval-trailing-byte":       "bad-request",
		"approval-ttl-3601":            "bad-request",
		"approval-unknown-template":    "bad-request",
		"approval-id-not-valid":        "bad-request",
	}
	for i := range out {
		got, reply := refusalResult(t, vw, x, &out[i])
		if got != spec[out[i].Name] || hex.EncodeToString(reply) != out[i].Output {
			t.Fatalf("%s: %s %x, want %s %s", out[i].Name, got, reply, spec[out[i].Name], out[i].Output)
		}
		out[i].Result = got
	}
	if len(spec) != len(out) {
		t.Fatalf("%d refusals, %d results", len(out), len(spec))
	}
	return out
}

func digestSlice(label string, b []byte) []byte {
	d := digest(label, b)
	return d[:]
}

// refusalResult runs v and returns its result: the class's name, or
// "challenge" and the challenge.
func refusalResult(t testing.TB, vw *vectorWorld, x *vectorExpected, v *refusalVector) (string, []byte) {
	t.Helper()
	reply, kind, err := runRefusal(t, vw, x, v)
	switch {
	case err != nil:
		c, _ := Class(err).(Error)
		return c.Name(), reply
	case kind == ReplyChallenge:
		return "challenge", reply
	}
	return "accepted", reply
}

// runRefusal hands v's input to its receiver, set up with the exchange of
// x, and returns the reply (a gateway's) and the error.
func runRefusal(t testing.TB, vw *vectorWorld, x *vectorExpected, v *refusalVector) ([]byte, ReplyKind, error) {
	t.Helper()
	input := unhex(t, v.Input)
	payload := unhex(t, x.Approval)
	switch v.To {
	case "gateway":
		r, gw := vw.registrar(t)
		if v.Approval != "" {
			payload = unhex(t, v.Approval)
		}
		vw.approve(t, r, payload)
		if v.GatewayNonce != "" {
			setNonceG(t, r, vw.in.DeviceID, unhex(t, v.GatewayNonce))
		}
		switch v.After {
		case "":
		case "revoked":
			gw.revoked = map[[FingerprintSize]byte]bool{Fingerprint(pubBytes(t, vw.dev)): true}
		case "withdrawn":
			r.mayApprove = func(string) bool { return false }
		default:
			t.Fatalf("%s: after %q", v.Name, v.After)
		}
		for range v.PriorHellos {
			r.HandleHello(unhex(t, x.Hello))
		}
		return r.HandleHello(input)
	case "device":
		d := vw.device(t)
		if _, err := d.hello(vw.now, vw.in.GatewayID, [NonceSize]byte(unhex(t, vw.in.FirstNonce))); err != nil {
			t.Fatal(err)
		}
		if err := d.AcceptChallenge(unhex(t, x.Challenge)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.hello(vw.now, vw.in.GatewayID, [NonceSize]byte(unhex(t, vw.in.Nonce))); err != nil {
			t.Fatal(err)
		}
		_, err := d.AcceptWelcome(input)
		return nil, NoReply, err
	case "approve":
		r, gw := vw.registrar(t)
		if v.Revoked {
			gw.revoked = map[[FingerprintSize]byte]bool{Fingerprint(pubBytes(t, vw.dev)): true}
		}
		if v.KnownID {
			gw.keys = map[string][][]byte{vw.assigned(): {pubBytes(t, vw.otherDev)}}
		}
		if v.PriorCounter != 0 {
			err := r.Approve(ApprovalRequest{Operator: vw.in.Operator, Counter: v.PriorCounter, Encrypted: true, Payload: unhex(t, x.Approval)})
			if err != nil {
				t.Fatalf("%s: the prior approval: %v", v.Name, err)
			}
		}
		op := vw.in.Operator
		if v.Operator != "" {
			op = v.Operator
		}
		return nil, NoReply, r.Approve(ApprovalRequest{Operator: op, Counter: vw.in.ApprovalCounter, Encrypted: !v.NotEncrypted, Payload: input})
	}
	t.Fatalf("%s: to %q", v.Name, v.To)
	return nil, NoReply, nil
}

func vectorJSON(t testing.TB, f *vectorFile) []byte {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readVectors(t *testing.T) *vectorFile {
	data, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatalf("%v (run go test -run TestVectors -update)", err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// --- the checks ---

// TestVectors checks the vector file: every value derived from the inputs
// by the formulas of SPEC.md §14 written out again here, the signatures by
// verifying, the exchange by the package, and each refusal's class.
func TestVectors(t *testing.T) {
	if *update {
		f := generateVectors(t)
		if err := os.MkdirAll(filepath.Dir(vectorPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorPath, vectorJSON(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := readVectors(t)
	in, x := f.Inputs, &f.Expected
	vw := newVectorWorld(t, in)

	// By the formulas.
	eq := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: computed %s, file says %s", what, got, want)
		}
	}
	h := hex.EncodeToString
	sha := func(parts ...[]byte) []byte { s := sha256.Sum256(slices.Concat(parts...)); return s[:] }
	mac := func(key []byte, parts ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(slices.Concat(parts...))
		return m.Sum(nil)
	}
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	str8 := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	pkD, pkG := pubBytes(t, vw.dev), pubBytes(t, vw.gw)
	eq("devicePublic", h(pkD), x.DevicePublic)
	eq("gatewayPublic", h(pkG), x.GatewayPublic)
	F := sha([]byte("mqttsec enroll fp v1"), []byte{0}, pkD)
	eq("fingerprint", h(F), x.Fingerprint)
	w := uint64(in.Time / in.WindowSeconds)
	if w != x.Window {
		t.Fatalf("window %d, file says %d", w, x.Window)
	}
	seed := unhex(t, in.PoPSeed)
	pop := mac(seed, []byte("mqttsec enroll pop v1"), []byte{0}, u64(w))[:16]
	popPrev := mac(seed, []byte("mqttsec enroll pop v1"), []byte{0}, u64(w-1))[:16]
	eq("pop", h(pop), x.PoP)
	eq("popPrev", h(popPrev), x.PoPPrev)
	eq("code", "mqttsec-enroll:1:"+in.DeviceID+":"+b64.EncodeToString(F)+":"+b64.EncodeToString(pop), x.Code)
	eq("approval", h(slices.Concat([]byte{1}, str8(in.DeviceID), F, pop, str8(in.Template), str8(in.Assign),
		binary.BigEndian.AppendUint32(nil, in.TTLSeconds))), x.Approval)
	nonce, nonceG := unhex(t, in.Nonce), unhex(t, in.GatewayNonce)
	firstBody := slices.Concat([]byte{0xE1}, str8(in.GatewayID), str8(in.DeviceID), pkD, unhex(t, in.FirstNonce), make([]byte, 16))
	firstT := sha([]byte("mqttsec enroll hello v1"), []byte{0}, firstBody)
	firstSig := unhex(t, x.FirstHello)[len(x.FirstHello)/2-64:]
	eq("firstHello", h(slices.Concat(firstBody, mac(pop, []byte("mqttsec enroll hello-pop v1"), []byte{0}, firstT),
		mac(popPrev, []byte("mqttsec enroll hello-pop v1"), []byte{0}, firstT), firstSig)), x.FirstHello)
	verifyES256(t, "firstHello's signature", &vw.dev.PublicKey, slices.Concat([]byte("mqttsec enroll hello-sig v1"), []byte{0}, firstT), firstSig)
	eq("challenge", h(slices.Concat([]byte{0xE0}, str8(in.GatewayID), str8(in.DeviceID), nonceG)), x.Challenge)
	body := slices.Concat([]byte{0xE1}, str8(in.GatewayID), str8(in.DeviceID), pkD, nonce, nonceG)
	T := sha([]byte("mqttsec enroll hello v1"), []byte{0}, body)
	eq("helloT", h(T), x.HelloT)
	tag := mac(pop, []byte("mqttsec enroll hello-pop v1"), []byte{0}, T)
	tagPrev := mac(popPrev, []byte("mqttsec enroll hello-pop v1"), []byte{0}, T)
	eq("helloTag", h(tag), x.HelloTag)
	eq("helloTagPrev", h(tagPrev), x.HelloTagPrev)
	eq("hello", h(slices.Concat(body, tag, tagPrev))+x.HelloSignature, x.Hello)
	verifyES256(t, "helloSignature", &vw.dev.PublicKey, slices.Concat([]byte("mqttsec enroll hello-sig v1"), []byte{0}, T), unhex(t, x.HelloSignature))
	eq("assignedId", vw.assigned(), x.AssignedID)
	if x.CounterFloor != in.HighestCounter+1 {
		t.Fatalf("counterFloor %d, want %d", x.CounterFloor, in.HighestCounter+1)
	}
	body2 := slices.Concat([]byte{0xE2}, str8(in.GatewayID), str8(vw.assigned()), T, nonce, pkG, u64(x.CounterFloor))
	T2 := sha([]byte("mqttsec enroll welcome v1"), []byte{0}, body2)
	eq("welcomeT2", h(T2), x.WelcomeT2)
	tagG := mac(pop, []byte("mqttsec enroll welcome-pop v1"), []byte{0}, T2)
	eq("welcomeTag", h(tagG), x.WelcomeTag)
	eq("welcome", h(slices.Concat(body2, tagG))+x.WelcomeSignature, x.Welcome)
	verifyES256(t, "welcomeSignature", &vw.gw.PublicKey, slices.Concat([]byte("mqttsec enroll welcome-sig v1"), []byte{0}, T2), unhex(t, x.WelcomeSignature))

	// By the package: the device makes the same hello (but for its
	// signature), the registrar takes it and makes the same welcome (but
	// for its signature), the device accepts the file's welcome.
	d := vw.device(t)
	if c := d.Code(vw.now).Text(); c != x.Code {
		t.Fatalf("Device.Code %s", c)
	}
	r, gw := vw.registrar(t)
	vw.approve(t, r, unhex(t, x.Approval))
	fb, err := d.hello(vw.now, in.GatewayID, [NonceSize]byte(unhex(t, in.FirstNonce)))
	if err != nil {
		t.Fatal(err)
	}
	fileFirst := unhex(t, x.FirstHello)
	if !bytes.Equal(fb[:len(fb)-sigSize], fileFirst[:len(fileFirst)-sigSize]) {
		t.Fatal("Device.Hello differs from the file's first hello before the signature")
	}
	c, kind, err := r.HandleHello(fileFirst)
	if err != nil || kind != ReplyChallenge || h(c) != x.Challenge {
		t.Fatalf("HandleHello of the first hello: %v %x, %v", kind, c, err)
	}
	if err := d.AcceptChallenge(c); err != nil {
		t.Fatal(err)
	}
	hb, err := d.hello(vw.now, in.GatewayID, [NonceSize]byte(nonce))
	if err != nil {
		t.Fatal(err)
	}
	fileHello, fileWelcome := unhex(t, x.Hello), unhex(t, x.Welcome)
	if !bytes.Equal(hb[:len(hb)-sigSize], fileHello[:len(fileHello)-sigSize]) {
		t.Fatal("Device.Hello differs from the file's hello before the signature")
	}
	wb, err := handle(r, fileHello)
	if err != nil {
		t.Fatalf("HandleHello of the file's hello: %v", err)
	}
	if !bytes.Equal(wb[:len(wb)-sigSize], fileWelcome[:len(fileWelcome)-sigSize]) {
		t.Fatal("the registrar's welcome differs from the file's before the signature")
	}
	if got, _ := gw.adds[0].Key.Bytes(); len(gw.adds) != 1 || !bytes.Equal(got, pkD) || gw.adds[0].ID != x.AssignedID {
		t.Fatal("Add did not get the device's key under the assigned id")
	}
	res, err := d.AcceptWelcome(fileWelcome)
	if err != nil {
		t.Fatalf("AcceptWelcome of the file's welcome: %v", err)
	}
	if got, _ := res.GatewayKey.Bytes(); res.ID != x.AssignedID || res.GatewayID != in.GatewayID ||
		res.CounterFloor != x.CounterFloor || !bytes.Equal(got, pkG) {
		t.Fatalf("welcome %+v", res)
	}

	for _, c := range f.Codes {
		t.Run(c.Name, func(t *testing.T) {
			got, err := ParseCode(c.Text)
			if c.Result != "ok" {
				if err == nil || Class(err).(Error).Name() != c.Result {
					t.Fatalf("ParseCode: %v, want %s", err, c.Result)
				}
				return
			}
			if err != nil || got.ID != c.ID || h(got.Fingerprint[:]) != c.Fingerprint || h(got.PoP[:]) != c.PoP {
				t.Fatalf("ParseCode: %+v, %v", got, err)
			}
		})
	}
	if len(f.Refusals) == 0 {
		t.Fatal("no refusals")
	}
	seen := map[string]bool{}
	for _, v := range f.Refusals {
		seen[v.To+" "+v.Result] = true
		t.Run(v.Name, func(t *testing.T) {
			got, reply := refusalResult(t, vw, x, &v)
			if got != v.Result || h(reply) != v.Output {
				t.Fatalf("%s %x, want %s %s", got, reply, v.Result, v.Output)
			}
		})
	}
	for _, want := range []string{
		"gateway malformed", "gateway context", "gateway no-approval", "gateway throttled", "gateway fingerprint",
		"gateway pop", "gateway signature", "device malformed", "device context", "device pop", "device signature",
		"approve forbidden", "approve bad-request", "gateway challenge", "gateway forbidden",
	} {
		if !seen[want] {
			t.Errorf("no refusal vector %s", want)
		}
	}
}

func verifyES256(t testing.TB, what string, pub *ecdsa.PublicKey, msg, sig []byte) {
	t.Helper()
	d := sha256.Sum256(msg)
	if len(sig) != 64 || !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatalf("%s does not verify", what)
	}
}

// TestVectorsReproducible: the generator, with its seeded randomness,
// makes the file as it is. (A Go release that changes how ECDSA draws its
// nonce changes the signatures: then run go test -run TestVectors -update,
// and check that only signatures changed.)
func TestVectorsReproducible(t *testing.T) {
	got := vectorJSON(t, generateVectors(t))
	want, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("testdata/vectors.json differs from the generator's output (run go test -run TestVectors -update)")
	}
}
