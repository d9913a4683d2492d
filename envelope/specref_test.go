package envelope_test

// A reference reader for Envelope 1.0, written from SPEC.md alone.
//
// It does not import the envelope package: it is an independent receiver,
// used by rules_test.go to show that the vectors in testdata/vectors pin
// every rule of SPEC.md §9.2. Each rule is a check named by its id (srRules);
// a reader can be given a set of ids to switch off, and a switched-off check
// is skipped (treated as passing).
//
// What "skipped" means where the spec gives the reader nothing to go on is a
// choice of this file, not of SPEC.md; each such choice is written next to
// the code that makes it, and summed up here:
//
//   - frame-cut, frame-len, hdr-cut: the reader goes on with the bytes there
//     are: a member or string that runs past the end takes what is left, and
//     a fixed-width field (a length, a number, a key id) cut by the end reads
//     its missing bytes as zeros. In the frame only the first place where
//     reading leaves E is a fault; what follows is its consequence.
//   - frame-trailing, hdr-trailing: the extra bytes are ignored.
//   - frame-future, frame-version: the envelope is read as Envelope 1.0.
//   - key-sender: the unknown sender gets an empty peer (no keys, the
//     default policy, no replay window), since the receiver knows nothing
//     about it.
//   - key-mac, key-hotp, key-sig, key-psk, key-rcpt: the cryptographic step
//     then runs without a key and fails.
//   - auth-hotp-digits: the code's own length chooses the digit count, which
//     is exactly what the rule forbids (§4.4: "the envelope does not choose it").
//   - fresh-clockless: a clockless receiver checks a req or evt for
//     fresh-lifetime only, as it does a reply.
//   - replay-look: the reader does not look at the window at step 9; a
//     replay is then refused at step 12 (by the window rule that applies).
//   - replay-admit: refuses at step 12 a counter the look at step 9 let pass;
//     in this sequential reader nothing changes between 9 and 12, so it never
//     fires (SPEC.md §9.2 says no vector can show it).
//   - dec-unwrap: the reader goes on with whatever key it can get: an RSA wk
//     not as long as the modulus read as the integer it encodes, a later
//     entry it holds a key for when the first fails, a key of 16 or 24
//     bytes used as AES-128 or AES-192 (the mistakes the rule forbids);
//     with no key at all, AES-GCM cannot open P and dec-tag refuses.
//   - dec-tag: the payload released is P decrypted without its tag checked.

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ---------------------------------------------------------------------------
// Constants of SPEC.md

const (
	srDefaultMaxSize  = 262144 // §9.2 size-limit
	srDefaultSkew     = 30000  // §7.4
	srDefaultLifetime = 300000 // §7.4
	srDefaultWidth    = 64     // §7.2
	srMinEnvelope     = 17     // §2
	srKidLen          = 12     // §3.1
	srTimeMethod      = "mqttsec.time"
	srWrapInfo        = "mqttsec v1 content key" // §4.6, info and label
	srSIPrefix        = "mqttsec.v1."            // §4.1
	srAPrefix         = "mqttsec.v1.digest."     // §4.1
)

// kind (§3.1)
const (
	srReq = 0x01
	srRep = 0x02
	srEvt = 0x04
	srErr = 0x08
)

// prot bits (§3.1)
const (
	srProtEnc  = 0x01
	srProtHMAC = 0x02
	srProtHOTP = 0x04
	srProtSig  = 0x08
)

// sig algorithm codes and enc wrap algorithm codes (§3.1)
const (
	srSigEd25519 = 1
	srSigES256   = 2
	srSigPS256   = 3

	srWrapX25519 = 1
	srWrapXWing  = 2
	srWrapRSA    = 3
)

var srKindNames = map[string]byte{"req": srReq, "rep": srRep, "evt": srEvt, "err": srErr}

var srProtNames = map[string]byte{"enc": srProtEnc, "hmac": srProtHMAC, "hotp": srProtHOTP, "sig": srProtSig}

// ---------------------------------------------------------------------------
// The frame (§2)

type srFrame struct {
	buf        []byte // E, and the zero bytes a cut length field was read with
	H, P, M, S []byte
	pEnd       int             // where P ends in buf: SI covers buf[0:pEnd]
	faults     map[string]bool // frame-cut, frame-len, frame-trailing
}

// srReadFrame reads the four members. It never stops: where E ends inside a
// length field the missing bytes read as zeros (frame-cut), and a member
// that runs past the end takes the bytes there are (frame-len). Only the
// first place where reading leaves E is a fault; after it, E has ended and
// what is read there is the consequence of that one fault.
func srReadFrame(E []byte) *srFrame {
	f := &srFrame{buf: E, faults: map[string]bool{}}
	if len(E) < srMinEnvelope { // the empty input included (§9.2 frame-cut)
		f.faults["frame-cut"] = true
	}
	ended := false
	fault := func(rule string) {
		if !ended {
			f.faults[rule] = true
			ended = true
		}
	}
	zeroFill := func(end int) {
		if end > len(f.buf) {
			fault("frame-cut")
			f.buf = append(slices.Clip(f.buf), make([]byte, end-len(f.buf))...)
		}
	}
	zeroFill(1)
	pos := 1
	var members [4][]byte
	for i := range members {
		zeroFill(pos + 4)
		n64 := uint64(binary.BigEndian.Uint32(f.buf[pos:]))
		pos += 4
		if uint64(pos)+n64 > uint64(len(f.buf)) {
			fault("frame-len")
			n64 = uint64(len(f.buf) - pos)
		}
		n := int(n64)
		members[i] = f.buf[pos : pos+n]
		pos += n
		if i == 1 {
			f.pEnd = pos
		}
	}
	if pos < len(E) {
		f.faults["frame-trailing"] = true
	}
	f.H, f.P, f.M, f.S = members[0], members[1], members[2], members[3]
	return f
}

// ---------------------------------------------------------------------------
// The header (§3.1)

type srWrap struct {
	alg byte
	kid []byte
	wk  []byte
}

type srHeader struct {
	kind, prot         byte
	from               []byte
	to                 [][]byte
	topic, replyTo     []byte
	corr, re           []byte
	ctr, iat, exp      uint64
	macKid             []byte
	hotpKid, hotpCode  []byte
	sigAlg             byte
	sigKid             []byte
	encN               int // the u8 n of enc
	pskKid             []byte
	wraps              []srWrap
	faults             map[string]bool // hdr-cut, hdr-trailing
	hasHMAC, hasHOTP   bool
	hasSig, hasEnc     bool
	hasPSK, hasWrapped bool
	toCount            int
}

// srHdrBuf reads H front to back. Past its end (hdr-cut) a string takes the
// bytes there are, and a fixed-width field reads the missing bytes as zeros.
type srHdrBuf struct {
	b   []byte
	pos int
	cut bool
}

// fixed reads n bytes, zero-filled past the end.
func (r *srHdrBuf) fixed(n int) []byte {
	if r.pos+n > len(r.b) {
		r.cut = true
		r.b = append(slices.Clip(r.b), make([]byte, r.pos+n-len(r.b))...)
	}
	v := r.b[r.pos : r.pos+n]
	r.pos += n
	return v
}

// str reads n bytes, or those there are.
func (r *srHdrBuf) str(n int) []byte {
	if r.pos+n > len(r.b) {
		r.cut = true
		n = len(r.b) - r.pos
	}
	v := r.b[r.pos : r.pos+n]
	r.pos += n
	return v
}

func (r *srHdrBuf) u8() byte      { return r.fixed(1)[0] }
func (r *srHdrBuf) u16() int      { return int(binary.BigEndian.Uint16(r.fixed(2))) }
func (r *srHdrBuf) u64() uint64   { return binary.BigEndian.Uint64(r.fixed(8)) }
func (r *srHdrBuf) str8() []byte  { return r.str(int(r.u8())) }
func (r *srHdrBuf) str16() []byte { return r.str(r.u16()) }
func (r *srHdrBuf) kid() []byte   { return r.fixed(srKidLen) }

func srReadHeader(H []byte) *srHeader {
	realLen := len(H)
	r := &srHdrBuf{b: H}
	h := &srHeader{faults: map[string]bool{}}
	h.kind = r.u8()
	h.prot = r.u8()
	h.from = r.str8()
	h.toCount = int(r.u8())
	for range h.toCount {
		h.to = append(h.to, r.str8())
	}
	h.topic = r.str16()
	h.replyTo = r.str16()
	h.corr = r.str8()
	h.re = r.str8()
	h.ctr = r.u64()
	h.iat = r.u64()
	h.exp = r.u64()
	h.hasEnc = h.prot&srProtEnc != 0
	h.hasHMAC = h.prot&srProtHMAC != 0
	h.hasHOTP = h.prot&srProtHOTP != 0
	h.hasSig = h.prot&srProtSig != 0
	// The last four fields, in the order of the table, exactly when their bit is set.
	if h.hasHMAC {
		h.macKid = r.kid()
	}
	if h.hasHOTP {
		h.hotpKid = r.kid()
		h.hotpCode = r.str8()
	}
	if h.hasSig {
		h.sigAlg = r.u8()
		h.sigKid = r.kid()
	}
	if h.hasEnc {
		h.encN = int(r.u8())
		if h.encN == 0 {
			h.hasPSK = true
			h.pskKid = r.kid()
		} else {
			h.hasWrapped = true
			for range h.encN {
				var w srWrap
				w.alg = r.u8()
				w.kid = r.kid()
				w.wk = r.str16()
				h.wraps = append(h.wraps, w)
			}
		}
	}
	if r.cut {
		h.faults["hdr-cut"] = true
	} else if r.pos < realLen {
		h.faults["hdr-trailing"] = true
	}
	return h
}

func (h *srHeader) isKind(kinds ...byte) bool { return slices.Contains(kinds, h.kind) }

// ---------------------------------------------------------------------------
// Keys (§4.2, §6) and the receiver's configuration

type srHMACKey struct {
	name   string
	secret []byte
	kid    []byte
}

type srHOTPKey struct {
	name   string
	secret []byte
	digits int
	kid    []byte
}

type srSigKey struct {
	name string
	alg  byte
	kid  []byte
	pub  []byte // the pub of §6
	ed   ed25519.PublicKey
	ec   *ecdsa.PublicKey
	rsa  *rsa.PublicKey
}

type srPSKKey struct {
	name string
	key  []byte
	kid  []byte
}

type srIdentity struct {
	name string
	alg  byte
	kid  []byte
	pub  []byte
	hpke hpke.PrivateKey // HPKE-X25519, HPKE-MLKEM768X25519
	rsa  *rsa.PrivateKey // RSA-OAEP-256
	seed []byte          // X-Wing seed (for the from-the-spec check of §4.7)
}

// srKeys holds every key of keys.json, by the names of SPEC.md §11.
type srKeys struct {
	hmac       map[string]*srHMACKey
	hotp       map[string]*srHOTPKey
	sig        map[string]*srSigKey
	psk        map[string]*srPSKKey
	identities map[string]*srIdentity
	// keyIds and publicKeys as keys.json gives them, for cross-checks.
	fileKeyIDs map[string]string
	filePubs   map[string]string
}

// srKidSecret and srKidPublic are the key ids of §6.
func srKidSecret(secret []byte, alg string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("mqttsec kid v1"))
	m.Write([]byte{0})
	m.Write([]byte(alg))
	return m.Sum(nil)[:srKidLen]
}

func srKidPublic(alg string, pub []byte) []byte {
	h := sha256.New()
	h.Write([]byte("mqttsec kid v1"))
	h.Write([]byte{0})
	h.Write([]byte(alg))
	h.Write([]byte{0})
	h.Write(pub)
	return h.Sum(nil)[:srKidLen]
}

func srB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	return base64.RawURLEncoding.DecodeString(s)
}

func srLoadKeys(path string) (*srKeys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kf struct {
		HMAC             string            `json:"hmac"`
		OtherHMAC        string            `json:"otherHmac"`
		HOTP             string            `json:"hotp"`
		HOTPDigits       int               `json:"hotpDigits"`
		PSK              string            `json:"psk"`
		Ed25519Seed      string            `json:"ed25519Seed"`
		OtherEd25519Seed string            `json:"otherEd25519Seed"`
		ES256Private     string            `json:"es256Private"`
		RSASignPrivate   string            `json:"rsaSignPrivate"`
		X25519Private    string            `json:"x25519Private"`
		XWingSeed        string            `json:"xwingSeed"`
		RSAOAEPPrivate   string            `json:"rsaOaepPrivate"`
		KeyIDs           map[string]string `json:"keyIds"`
		PublicKeys       map[string]string `json:"publicKeys"`
	}
	if err := json.Unmarshal(raw, &kf); err != nil {
		return nil, fmt.Errorf("keys.json: %w", err)
	}
	var errs []error
	b := func(field, v string) []byte {
		if v == "" {
			errs = append(errs, fmt.Errorf("keys.json: %s missing", field))
			return nil
		}
		d, err := srB64(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys.json: %s: %w", field, err))
		}
		return d
	}
	rsaKey := func(field, v string) *rsa.PrivateKey {
		blk, _ := pem.Decode([]byte(v))
		if blk == nil {
			errs = append(errs, fmt.Errorf("keys.json: %s: no PEM block", field))
			return nil
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys.json: %s: %w", field, err))
			return nil
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			errs = append(errs, fmt.Errorf("keys.json: %s: not RSA", field))
		}
		return rk
	}
	k := &srKeys{
		hmac:       map[string]*srHMACKey{},
		hotp:       map[string]*srHOTPKey{},
		sig:        map[string]*srSigKey{},
		psk:        map[string]*srPSKKey{},
		identities: map[string]*srIdentity{},
		fileKeyIDs: kf.KeyIDs,
		filePubs:   kf.PublicKeys,
	}
	for name, s := range map[string][]byte{"hmac": b("hmac", kf.HMAC), "other-hmac": b("otherHmac", kf.OtherHMAC)} {
		k.hmac[name] = &srHMACKey{name: name, secret: s, kid: srKidSecret(s, "HS256")}
	}
	hs := b("hotp", kf.HOTP)
	if kf.HOTPDigits != 6 {
		errs = append(errs, fmt.Errorf("keys.json: hotpDigits is %d, SPEC.md §11 says 6", kf.HOTPDigits))
	}
	k.hotp["hotp"] = &srHOTPKey{name: "hotp", secret: hs, digits: 6, kid: srKidSecret(hs, "HOTP")}
	k.hotp["hotp8"] = &srHOTPKey{name: "hotp8", secret: hs, digits: 8, kid: srKidSecret(hs, "HOTP")}
	ps := b("psk", kf.PSK)
	k.psk["psk"] = &srPSKKey{name: "psk", key: ps, kid: srKidSecret(ps, "A256GCM")}

	for name, seed := range map[string][]byte{"ed25519": b("ed25519Seed", kf.Ed25519Seed), "other-ed25519": b("otherEd25519Seed", kf.OtherEd25519Seed)} {
		if len(seed) != ed25519.SeedSize {
			errs = append(errs, fmt.Errorf("keys.json: %s seed has %d bytes", name, len(seed)))
			continue
		}
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		k.sig[name] = &srSigKey{name: name, alg: srSigEd25519, ed: pub, pub: pub, kid: srKidPublic("Ed25519", pub)}
	}
	if d := b("es256Private", kf.ES256Private); d != nil {
		priv, err := ecdh.P256().NewPrivateKey(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys.json: es256Private: %w", err))
		} else {
			point := priv.PublicKey().Bytes() // 04 || X || Y
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
			if err != nil {
				errs = append(errs, err)
			}
			k.sig["es256"] = &srSigKey{name: "es256", alg: srSigES256, ec: pub, pub: point, kid: srKidPublic("ES256", point)}
		}
	}
	if rk := rsaKey("rsaSignPrivate", kf.RSASignPrivate); rk != nil {
		spki, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
		if err != nil {
			errs = append(errs, err)
		}
		k.sig["ps256"] = &srSigKey{name: "ps256", alg: srSigPS256, rsa: &rk.PublicKey, pub: spki, kid: srKidPublic("PS256", spki)}
	}

	if d := b("x25519Private", kf.X25519Private); d != nil {
		priv, err := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys.json: x25519Private: %w", err))
		} else {
			pub := priv.PublicKey().Bytes()
			k.identities["x25519"] = &srIdentity{name: "x25519", alg: srWrapX25519, hpke: priv, pub: pub, kid: srKidPublic("HPKE-X25519", pub)}
		}
	}
	if seed := b("xwingSeed", kf.XWingSeed); seed != nil {
		priv, err := hpke.MLKEM768X25519().NewPrivateKey(seed)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys.json: xwingSeed: %w", err))
		} else {
			pub := priv.PublicKey().Bytes()
			k.identities["xwing"] = &srIdentity{name: "xwing", alg: srWrapXWing, hpke: priv, pub: pub, seed: seed, kid: srKidPublic("HPKE-MLKEM768X25519", pub)}
		}
	}
	if rk := rsaKey("rsaOaepPrivate", kf.RSAOAEPPrivate); rk != nil {
		spki, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
		if err != nil {
			errs = append(errs, err)
		}
		k.identities["rsa-oaep"] = &srIdentity{name: "rsa-oaep", alg: srWrapRSA, rsa: rk, pub: spki, kid: srKidPublic("RSA-OAEP-256", spki)}
	}
	return k, errors.Join(errs...)
}

// srKidOf gives the key id this reader computes (§6) for a key name of §11.
func (k *srKeys) srKidOf(name string) []byte {
	switch {
	case k.hmac[name] != nil:
		return k.hmac[name].kid
	case k.hotp[name] != nil:
		return k.hotp[name].kid
	case k.sig[name] != nil:
		return k.sig[name].kid
	case k.psk[name] != nil:
		return k.psk[name].kid
	case k.identities[name] != nil:
		return k.identities[name].kid
	}
	return nil
}

// ---------------------------------------------------------------------------
// Vectors (§11)

type srVector struct {
	file        string
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Rule        string   `json:"rule"`
	Sender      string   `json:"sender"`
	Receiver    string   `json:"receiver"`
	Now         *uint64  `json:"now"`
	Clockless   bool     `json:"clockless"`
	MaxSize     int      `json:"maxSize"`
	ReplayWidth uint64   `json:"replayWidth"`
	Trust       []string `json:"trust"`
	Identities  []string `json:"identities"`
	Policy      struct {
		Require                   []string `json:"require"`
		RequirePairwiseEncryption bool     `json:"requirePairwiseEncryption"`
		Clockless                 bool     `json:"clockless"`
		MaxClockSkewMs            uint64   `json:"maxClockSkewMs"`
		MaxLifetimeMs             uint64   `json:"maxLifetimeMs"`
	} `json:"policy"`
	Expect struct {
		Kinds   []string `json:"kinds"`
		From    *string  `json:"from"`
		Topic   *string  `json:"topic"`
		Request string   `json:"request"`
	} `json:"expect"`
	Replayed []string        `json:"replayed"`
	Envelope string          `json:"envelope"`
	Header   json.RawMessage `json:"header"`
	Result   string          `json:"result"`
	Payload  *string         `json:"payload"`
	Digest   string          `json:"digest"`

	env []byte // Envelope decoded
}

// srLoadVectors reads the vector files of dir that follow SPEC.md §11: a JSON
// object whose envelope is hex and which has a result. Anything else (the
// pre-1.0 JSON envelopes) is listed in skipped.
func srLoadVectors(dir string) (vs []*srVector, skipped []string, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		if filepath.Base(f) == "keys.json" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		v := &srVector{file: filepath.Base(f)}
		if err := json.Unmarshal(raw, v); err != nil {
			skipped = append(skipped, v.file+": "+err.Error())
			continue
		}
		env, herr := hex.DecodeString(v.Envelope)
		if herr != nil || v.Result == "" {
			skipped = append(skipped, v.file+": not a §11 vector (envelope not hex, or no result)")
			continue
		}
		v.env = env
		if v.Name == "" {
			v.Name = strings.TrimSuffix(v.file, ".json")
		}
		vs = append(vs, v)
	}
	return vs, skipped, nil
}

// ---------------------------------------------------------------------------
// The reader

type srPeer struct {
	id        string
	hmac      []*srHMACKey
	hotp      []*srHOTPKey
	sig       []*srSigKey
	psk       []*srPSKKey
	require   byte // prot bits the policy requires
	pairwise  bool
	clockless bool
	skew      uint64
	lifetime  uint64
}

// srPending is a request the receiver waits for (§8).
type srPending struct {
	digest    []byte
	corr      []byte
	topic     []byte
	recipient []byte // the one id in its to
}

// srWindow is a sender's replay window (§7.2), and the floor it started under (§7.3).
type srWindow struct {
	top   uint64
	marks map[uint64]bool // accepted counters in top-W+1 … top
	floor *uint64
}

type srReader struct {
	off        map[string]bool
	me         string
	maxSize    int
	clockless  bool
	now        uint64
	peers      map[string]*srPeer
	identities []*srIdentity
	kinds      map[byte]bool
	wantFrom   *string
	wantTopic  *string
	pending    *srPending
	width      uint64
	windows    map[string]*srWindow
	floor      *uint64 // §7.3: newest iat accepted from a forgotten sender (none here)
	lossAt     *uint64 // §7.3: when a loss of replay state was noticed (none here)
}

// srNewReader sets up the receiver a vector describes.
func srNewReader(v *srVector, keys *srKeys, off map[string]bool) (*srReader, error) {
	r := &srReader{
		off:       off,
		me:        v.Receiver,
		maxSize:   v.MaxSize,
		clockless: v.Clockless,
		peers:     map[string]*srPeer{},
		kinds:     map[byte]bool{},
		wantFrom:  v.Expect.From,
		wantTopic: v.Expect.Topic,
		width:     v.ReplayWidth,
		windows:   map[string]*srWindow{},
	}
	if r.maxSize == 0 {
		r.maxSize = srDefaultMaxSize
	}
	if r.width == 0 {
		r.width = srDefaultWidth
	}
	if r.width%64 != 0 {
		return nil, fmt.Errorf("replayWidth %d is not a multiple of 64 (§7.2)", r.width)
	}
	if !v.Clockless {
		if v.Now == nil {
			return nil, errors.New("no now and not clockless")
		}
		r.now = *v.Now
	}
	p := &srPeer{id: v.Sender, skew: v.Policy.MaxClockSkewMs, lifetime: v.Policy.MaxLifetimeMs,
		pairwise: v.Policy.RequirePairwiseEncryption, clockless: v.Policy.Clockless}
	if p.skew == 0 {
		p.skew = srDefaultSkew
	}
	if p.lifetime == 0 {
		p.lifetime = srDefaultLifetime
	}
	for _, name := range v.Policy.Require {
		bit, ok := srProtNames[name]
		if !ok {
			return nil, fmt.Errorf("policy.require: unknown protection %q", name)
		}
		p.require |= bit
	}
	for _, name := range v.Trust {
		switch {
		case keys.hmac[name] != nil:
			p.hmac = append(p.hmac, keys.hmac[name])
		case keys.hotp[name] != nil:
			p.hotp = append(p.hotp, keys.hotp[name])
		case keys.sig[name] != nil:
			p.sig = append(p.sig, keys.sig[name])
		case keys.psk[name] != nil:
			p.psk = append(p.psk, keys.psk[name])
		default:
			return nil, fmt.Errorf("trust: unknown key %q", name)
		}
	}
	r.peers[p.id] = p
	for _, name := range v.Identities {
		id := keys.identities[name]
		if id == nil {
			return nil, fmt.Errorf("identities: unknown key %q", name)
		}
		r.identities = append(r.identities, id)
	}
	for _, k := range v.Expect.Kinds {
		b, ok := srKindNames[k]
		if !ok {
			return nil, fmt.Errorf("expect.kinds: unknown kind %q", k)
		}
		r.kinds[b] = true
	}
	if v.Expect.Request != "" {
		req, err := hex.DecodeString(v.Expect.Request)
		if err != nil {
			return nil, fmt.Errorf("expect.request: %w", err)
		}
		f := srReadFrame(req)
		if len(f.faults) != 0 || req[0] != 0x01 {
			return nil, fmt.Errorf("expect.request does not read as a frame: %v", f.faults)
		}
		h := srReadHeader(f.H)
		if len(h.faults) != 0 || len(h.to) != 1 {
			return nil, fmt.Errorf("expect.request: header does not read (%v) or has %d recipients", h.faults, len(h.to))
		}
		r.pending = &srPending{digest: srDigest(f), corr: h.corr, topic: h.topic, recipient: h.to[0]}
	}
	if len(v.Replayed) > 0 {
		// The state after accepting these counters: T is the highest, and the
		// marks are those within the window below it (§7.2).
		w := &srWindow{marks: map[uint64]bool{}}
		var cs []uint64
		for _, s := range v.Replayed {
			c, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("replayed: %w", err)
			}
			cs = append(cs, c)
			w.top = max(w.top, c)
		}
		for _, c := range cs {
			if w.top-c < r.width {
				w.marks[c] = true
			}
		}
		r.windows[v.Sender] = w
	}
	return r, nil
}

// srDigest is D of §4.1.
func srDigest(f *srFrame) []byte {
	h := sha256.New()
	h.Write([]byte(srSIPrefix))
	h.Write(f.buf[:f.pEnd])
	return h.Sum(nil)
}

// srOpen is what one opening has found so far.
type srOpen struct {
	E           []byte
	f           *srFrame
	h           *srHeader
	D, A        []byte
	peer        *srPeer
	window      *srWindow
	timeRequest bool   // a time request from a peer whose policy is clockless (§10)
	looked      bool   // step 9 looked at the window
	lookRule    string // the window rule the look refused by

	// step 11
	wrap         *srWrap // the chosen wrapped key
	unwrapFailed bool    // dec-unwrap's condition
	ck           []byte  // the content key, as far as it could be had
	tagFailed    bool    // dec-tag's condition
	plain        []byte
}

// srResult is the outcome of an opening: "ok" or an error class, with the
// rule that refused.
type srResult struct {
	class   string
	rule    string
	payload []byte
	digest  []byte
}

func (r srResult) String() string {
	if r.class == "ok" {
		return fmt.Sprintf("ok payload=%x", r.payload)
	}
	return r.class + " (" + r.rule + ")"
}

// srRule is one rule of SPEC.md §9.2: its id, the step and class the spec
// gives it, and the check, which returns true when the rule refuses.
type srRule struct {
	id    string
	step  string // as SPEC.md writes it: "3", "9, 12"
	class string
	check func(r *srReader, o *srOpen) bool
	// window rules are not run on their own: the look at step 9 and the
	// check-and-update at step 12 apply them (srReader.windowRefuses).
	window bool
}

func srIn(b []byte, lo, hi int) bool { return len(b) >= lo && len(b) <= hi }

func srIDOK(id []byte) bool {
	for _, c := range id {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == ':', c == '@':
		default:
			return false
		}
	}
	return true
}

// srIDs is from and every id of to: the ids §3.2 constrains.
func (h *srHeader) ids() [][]byte { return append([][]byte{h.from}, h.to...) }

// srTopics is topic and replyTo, the fields the topic-* rules read.
func (h *srHeader) topics() [][]byte { return [][]byte{h.topic, h.replyTo} }

func srAnyTopic(h *srHeader, bad func(t []byte) bool) bool {
	return slices.ContainsFunc(h.topics(), bad)
}

func srAnyID(h *srHeader, bad func(id []byte) bool) bool {
	return slices.ContainsFunc(h.ids(), bad)
}

func srAnyWrap(h *srHeader, bad func(w srWrap) bool) bool {
	return slices.ContainsFunc(h.wraps, bad)
}

var srRules = []srRule{
	// Step 1: size, before anything is read.
	{"size-limit", "1", "too-large", func(r *srReader, o *srOpen) bool { return len(o.E) > r.maxSize }, false},

	// Step 2: the frame. The first byte is judged first and alone.
	{"frame-future", "2", "unsupported-version", func(r *srReader, o *srOpen) bool {
		return len(o.E) > 0 && o.E[0] >= 0x02 && o.E[0] <= 0x1F
	}, false},
	{"frame-version", "2", "malformed", func(r *srReader, o *srOpen) bool {
		return len(o.E) > 0 && (o.E[0] == 0x00 || o.E[0] >= 0x20)
	}, false},
	{"frame-cut", "2", "malformed", func(r *srReader, o *srOpen) bool { return o.f.faults["frame-cut"] }, false},
	{"frame-len", "2", "malformed", func(r *srReader, o *srOpen) bool { return o.f.faults["frame-len"] }, false},
	{"frame-trailing", "2", "malformed", func(r *srReader, o *srOpen) bool { return o.f.faults["frame-trailing"] }, false},

	// Step 3: the header and the member sizes.
	{"hdr-cut", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.faults["hdr-cut"] }, false},
	{"hdr-trailing", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.faults["hdr-trailing"] }, false},
	{"hdr-kind", "3", "malformed", func(r *srReader, o *srOpen) bool { return !o.h.isKind(srReq, srRep, srEvt, srErr) }, false},
	{"hdr-prot-bits", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.prot&^0x0F != 0 }, false},
	{"hdr-prot-none", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.prot == 0 }, false},
	{"sig-alg", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.hasSig && (o.h.sigAlg < 1 || o.h.sigAlg > 3)
	}, false},
	{"rcpt-alg", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyWrap(o.h, func(w srWrap) bool { return w.alg < 1 || w.alg > 3 })
	}, false},
	{"rcpt-max", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.hasEnc && o.h.encN > 64 }, false},
	{"id-len", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyID(o.h, func(id []byte) bool { return !srIn(id, 1, 128) })
	}, false},
	{"id-chars", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyID(o.h, func(id []byte) bool { return !srIDOK(id) })
	}, false},
	{"to-one", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.isKind(srReq, srRep, srErr) && len(o.h.to) != 1
	}, false},
	{"to-max", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.kind == srEvt && len(o.h.to) > 64 }, false},
	{"to-dup", "3", "malformed", func(r *srReader, o *srOpen) bool {
		if o.h.kind != srEvt {
			return false
		}
		seen := map[string]bool{}
		for _, id := range o.h.to {
			if seen[string(id)] {
				return true
			}
			seen[string(id)] = true
		}
		return false
	}, false},
	{"pairwise-to", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return (o.h.hasHMAC || o.h.hasHOTP || o.h.hasPSK) && len(o.h.to) != 1
	}, false},
	{"topic-len", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return !srIn(o.h.topic, 1, 1024) || (o.h.kind == srReq && !srIn(o.h.replyTo, 1, 1024))
	}, false},
	{"topic-utf8", "3", "malformed", func(r *srReader, o *srOpen) bool {
		// Go's utf8.Valid follows RFC 3629: it refuses overlong forms,
		// surrogates, values above U+10FFFF and cut sequences.
		return srAnyTopic(o.h, func(t []byte) bool { return !utf8.Valid(t) })
	}, false},
	{"topic-ctl", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyTopic(o.h, func(t []byte) bool {
			return slices.ContainsFunc(t, func(c byte) bool { return c <= 0x1F || c == 0x7F })
		})
	}, false},
	{"topic-json", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyTopic(o.h, func(t []byte) bool { return bytes.ContainsAny(t, "\"\\") })
	}, false},
	{"topic-wild", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyTopic(o.h, func(t []byte) bool { return bytes.ContainsAny(t, "+#") })
	}, false},
	{"topic-sep", "3", "malformed", func(r *srReader, o *srOpen) bool {
		// U+2028 is e2 80 a8 and U+2029 e2 80 a9 in UTF-8.
		return srAnyTopic(o.h, func(t []byte) bool {
			return bytes.Contains(t, []byte("\u2028")) || bytes.Contains(t, []byte("\u2029"))
		})
	}, false},
	{"replyto-extra", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.isKind(srRep, srEvt, srErr) && len(o.h.replyTo) > 0
	}, false},
	{"corr-len", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.isKind(srReq, srRep, srErr) && !srIn(o.h.corr, 1, 64)
	}, false},
	{"corr-extra", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.kind == srEvt && len(o.h.corr) > 0 }, false},
	{"re-len", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.isKind(srRep, srErr) && len(o.h.re) != 32 }, false},
	{"re-extra", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.isKind(srReq, srEvt) && len(o.h.re) > 0 }, false},
	{"ctr-zero", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.ctr == 0 }, false},
	{"time-range", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.exp > 1<<63-1 }, false},
	{"exp-order", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.exp <= o.h.iat }, false},
	{"hotp-len", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.hasHOTP && len(o.h.hotpCode) != 6 && len(o.h.hotpCode) != 8
	}, false},
	{"hotp-chars", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.hasHOTP && slices.ContainsFunc(o.h.hotpCode, func(c byte) bool { return c < '0' || c > '9' })
	}, false},
	{"rcpt-dup", "3", "malformed", func(r *srReader, o *srOpen) bool {
		// "two wrapped keys have the same key id": the id alone, whatever the algorithm.
		seen := map[string]bool{}
		for _, w := range o.h.wraps {
			if seen[string(w.kid)] {
				return true
			}
			seen[string(w.kid)] = true
		}
		return false
	}, false},
	{"wk-x25519", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyWrap(o.h, func(w srWrap) bool { return w.alg == srWrapX25519 && len(w.wk) != 80 })
	}, false},
	{"wk-xwing", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyWrap(o.h, func(w srWrap) bool { return w.alg == srWrapXWing && len(w.wk) != 1168 })
	}, false},
	{"wk-rsa", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return srAnyWrap(o.h, func(w srWrap) bool { return w.alg == srWrapRSA && !srIn(w.wk, 256, 1024) })
	}, false},
	{"mac-len", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.hasHMAC && len(o.f.M) != 32 }, false},
	{"mac-extra", "3", "malformed", func(r *srReader, o *srOpen) bool { return !o.h.hasHMAC && len(o.f.M) != 0 }, false},
	{"sig-len-ed25519", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.hasSig && o.h.sigAlg == srSigEd25519 && len(o.f.S) != 64
	}, false},
	{"sig-len-es256", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.hasSig && o.h.sigAlg == srSigES256 && len(o.f.S) != 64
	}, false},
	{"sig-len-ps256", "3", "malformed", func(r *srReader, o *srOpen) bool {
		return o.h.hasSig && o.h.sigAlg == srSigPS256 && !srIn(o.f.S, 256, 1024)
	}, false},
	{"sig-extra", "3", "malformed", func(r *srReader, o *srOpen) bool { return !o.h.hasSig && len(o.f.S) != 0 }, false},
	{"enc-short", "3", "malformed", func(r *srReader, o *srOpen) bool { return o.h.hasEnc && len(o.f.P) < 28 }, false},

	// Step 4: context, and a reply's binding (§8).
	{"ctx-recipient", "4", "context", func(r *srReader, o *srOpen) bool {
		addressed := slices.ContainsFunc(o.h.to, func(id []byte) bool { return string(id) == r.me })
		return !addressed && !(o.h.kind == srEvt && len(o.h.to) == 0)
	}, false},
	{"ctx-kind", "4", "context", func(r *srReader, o *srOpen) bool { return !r.kinds[o.h.kind] }, false},
	{"ctx-from", "4", "context", func(r *srReader, o *srOpen) bool { return r.wantFrom != nil && string(o.h.from) != *r.wantFrom }, false},
	{"ctx-topic", "4", "context", func(r *srReader, o *srOpen) bool {
		return r.wantTopic != nil && string(o.h.topic) != *r.wantTopic
	}, false},
	{"ctx-re", "4", "context", func(r *srReader, o *srOpen) bool {
		return o.h.isKind(srRep, srErr) && (r.pending == nil || subtle.ConstantTimeCompare(o.h.re, r.pending.digest) != 1)
	}, false},
	// With no request pending there is no corr, topic or recipient to compare:
	// ctx-re alone refuses that case.
	{"ctx-corr", "4", "context", func(r *srReader, o *srOpen) bool {
		return o.h.isKind(srRep, srErr) && r.pending != nil && !bytes.Equal(o.h.corr, r.pending.corr)
	}, false},
	{"ctx-reply-topic", "4", "context", func(r *srReader, o *srOpen) bool {
		return o.h.isKind(srRep, srErr) && r.pending != nil && !bytes.Equal(o.h.topic, r.pending.topic)
	}, false},
	{"ctx-reply-from", "4", "context", func(r *srReader, o *srOpen) bool {
		return o.h.isKind(srRep, srErr) && r.pending != nil && !bytes.Equal(o.h.from, r.pending.recipient)
	}, false},

	// Step 5: sender known, then policy.
	{"key-sender", "5", "unknown-key", func(r *srReader, o *srOpen) bool { return r.peers[string(o.h.from)] == nil }, false},
	{"pol-no-auth", "5", "policy", func(r *srReader, o *srOpen) bool { return !(o.h.hasHMAC || o.h.hasSig || o.h.hasPSK) }, false},
	{"pol-require", "5", "policy", func(r *srReader, o *srOpen) bool { return o.peer.require&^o.h.prot&0x0F != 0 }, false},
	{"pol-pairwise-enc", "5", "policy", func(r *srReader, o *srOpen) bool { return o.peer.pairwise && !o.h.hasPSK }, false},

	// Step 6: freshness (§7.4, §10). Compared without overflow.
	{"fresh-lifetime", "6", "expired", func(r *srReader, o *srOpen) bool {
		return o.h.exp > o.h.iat && o.h.exp-o.h.iat > o.peer.lifetime
	}, false},
	{"fresh-early", "6", "expired", func(r *srReader, o *srOpen) bool {
		return r.hasClockFor(o) && o.h.iat > r.now && o.h.iat-r.now > o.peer.skew
	}, false},
	{"fresh-late", "6", "expired", func(r *srReader, o *srOpen) bool {
		return r.hasClockFor(o) && r.now >= o.h.exp && r.now-o.h.exp >= o.peer.skew
	}, false},
	{"fresh-clockless", "6", "expired", func(r *srReader, o *srOpen) bool {
		return r.clockless && o.h.isKind(srReq, srEvt)
	}, false},

	// Step 7: the keys named exist (§6).
	{"key-mac", "7", "unknown-key", func(r *srReader, o *srOpen) bool { return o.h.hasHMAC && len(o.hmacKeys()) == 0 }, false},
	{"key-hotp", "7", "unknown-key", func(r *srReader, o *srOpen) bool { return o.h.hasHOTP && len(o.hotpKeys()) == 0 }, false},
	{"key-sig", "7", "unknown-key", func(r *srReader, o *srOpen) bool { return o.h.hasSig && len(o.sigKeys()) == 0 }, false},
	{"key-psk", "7", "unknown-key", func(r *srReader, o *srOpen) bool { return o.h.hasPSK && len(o.pskKeys()) == 0 }, false},
	{"key-rcpt", "7", "unknown-key", func(r *srReader, o *srOpen) bool {
		return o.h.hasWrapped && r.chooseWrap(o.h) == nil
	}, false},

	// Step 8: D, A; HMAC; HOTP.
	{"auth-hmac", "8", "authentication", func(r *srReader, o *srOpen) bool {
		if !o.h.hasHMAC {
			return false
		}
		for _, k := range o.hmacKeys() {
			m := hmac.New(sha256.New, k.secret)
			m.Write(o.A)
			if hmac.Equal(m.Sum(nil), o.f.M) {
				return false
			}
		}
		return true
	}, false},
	{"auth-hotp-digits", "8", "authentication", func(r *srReader, o *srOpen) bool {
		keys := o.hotpKeys()
		return o.h.hasHOTP && len(keys) > 0 && !slices.ContainsFunc(keys, func(k *srHOTPKey) bool { return k.digits == len(o.h.hotpCode) })
	}, false},
	{"auth-hotp", "8", "authentication", func(r *srReader, o *srOpen) bool {
		if !o.h.hasHOTP {
			return false
		}
		for _, k := range o.hotpKeys() {
			// d is the digit count the key was set up with. With
			// auth-hotp-digits switched off the code's length chooses it.
			if k.digits != len(o.h.hotpCode) && !r.off["auth-hotp-digits"] {
				continue
			}
			want := srHOTP(k.secret, o.h.ctr, len(o.h.hotpCode))
			if subtle.ConstantTimeCompare([]byte(want), o.h.hotpCode) == 1 {
				return false
			}
		}
		return true
	}, false},

	// Step 9: a read-only look at the replay window. The look is replay-look;
	// it refuses through the window rules below.
	{"replay-look", "9", "replayed", func(r *srReader, o *srOpen) bool {
		o.looked = true
		o.lookRule = r.windowRefuses(o)
		return o.lookRule != ""
	}, false},
	{"replay-seen", "9, 12", "replayed", func(r *srReader, o *srOpen) bool {
		return o.window != nil && o.window.marks[o.h.ctr]
	}, true},
	{"replay-old", "9, 12", "replayed", func(r *srReader, o *srOpen) bool {
		return o.window != nil && o.h.ctr <= o.window.top && o.window.top-o.h.ctr >= r.width
	}, true},
	{"replay-floor", "9, 12", "replayed", func(r *srReader, o *srOpen) bool {
		iat := r.replayIat(o)
		if o.window == nil {
			return r.floor != nil && iat <= *r.floor
		}
		return o.window.floor != nil && iat <= *o.window.floor
	}, true},
	{"replay-loss", "9, 12", "replayed", func(r *srReader, o *srOpen) bool {
		if r.lossAt == nil {
			return false
		}
		iat := r.replayIat(o)
		return iat <= *r.lossAt || iat-*r.lossAt <= o.peer.skew
	}, true},

	// Step 10: the signature over A (§4.5).
	{"auth-sig", "10", "authentication", func(r *srReader, o *srOpen) bool {
		if !o.h.hasSig {
			return false
		}
		for _, k := range o.sigKeys() {
			if srVerify(k, o.A, o.f.S) {
				return false
			}
		}
		return true
	}, false},

	// Step 11: unwrap CK, decrypt (§4.6). srReader.decrypt has done the work.
	{"dec-unwrap", "11", "decryption", func(r *srReader, o *srOpen) bool { return o.h.hasWrapped && o.unwrapFailed }, false},
	{"dec-tag", "11", "decryption", func(r *srReader, o *srOpen) bool { return o.h.hasEnc && o.tagFailed }, false},

	// Step 12: the atomic check-and-update. replay-admit refuses a counter
	// the look of step 9 let pass; the window cannot change between the two
	// steps in this sequential reader, so it never fires here.
	{"replay-admit", "12", "replayed", func(r *srReader, o *srOpen) bool {
		return o.looked && r.windowRefuses(o) != ""
	}, false},
}

var (
	srRuleByID    = map[string]*srRule{}
	srWindowRules []*srRule // replay-seen, replay-old, replay-floor, replay-loss
)

func init() {
	for i := range srRules {
		srRuleByID[srRules[i].id] = &srRules[i]
		if srRules[i].window {
			srWindowRules = append(srWindowRules, &srRules[i])
		}
	}
}

// hasClockFor: fresh-early and fresh-late need a clock, and are not applied
// to a time request from a clockless peer (§10).
func (r *srReader) hasClockFor(o *srOpen) bool { return !r.clockless && !o.timeRequest }

// replayIat is the iat §7.3 compares; for a time request from a clockless
// peer the receiver's own clock stands in for it.
func (r *srReader) replayIat(o *srOpen) uint64 {
	if o.timeRequest {
		return r.now
	}
	return o.h.iat
}

// windowRefuses applies the window rules that are switched on, and gives
// the id of the first that refuses.
func (r *srReader) windowRefuses(o *srOpen) string {
	o.window = r.windows[string(o.h.from)]
	for _, rule := range srWindowRules {
		if !r.off[rule.id] && rule.check(r, o) {
			return rule.id
		}
	}
	return ""
}

// record is the update half of step 12 (§7.2).
func (r *srReader) record(o *srOpen) {
	c := o.h.ctr
	w := r.windows[string(o.h.from)]
	if w == nil {
		w = &srWindow{top: c, marks: map[uint64]bool{}, floor: r.floor}
		r.windows[string(o.h.from)] = w
	}
	if c > w.top {
		w.top = c
		for m := range w.marks {
			if w.top-m >= r.width {
				delete(w.marks, m)
			}
		}
	}
	if w.top-c < r.width {
		w.marks[c] = true
	}
}

func (o *srOpen) hmacKeys() (ks []*srHMACKey) {
	for _, k := range o.peer.hmac {
		if bytes.Equal(k.kid, o.h.macKid) {
			ks = append(ks, k)
		}
	}
	return ks
}

func (o *srOpen) hotpKeys() (ks []*srHOTPKey) {
	for _, k := range o.peer.hotp {
		if bytes.Equal(k.kid, o.h.hotpKid) {
			ks = append(ks, k)
		}
	}
	return ks
}

func (o *srOpen) sigKeys() (ks []*srSigKey) {
	for _, k := range o.peer.sig {
		if k.alg == o.h.sigAlg && bytes.Equal(k.kid, o.h.sigKid) {
			ks = append(ks, k)
		}
	}
	return ks
}

func (o *srOpen) pskKeys() (ks []*srPSKKey) {
	for _, k := range o.peer.psk {
		if bytes.Equal(k.kid, o.h.pskKid) {
			ks = append(ks, k)
		}
	}
	return ks
}

// chooseWrap is the first entry whose algorithm and key id are one of the
// receiver's own decryption keys (§4.6).
func (r *srReader) chooseWrap(h *srHeader) *srWrap {
	for i, w := range h.wraps {
		for _, id := range r.identities {
			if id.alg == w.alg && bytes.Equal(id.kid, w.kid) {
				return &h.wraps[i]
			}
		}
	}
	return nil
}

func (r *srReader) identityFor(w *srWrap) *srIdentity {
	for _, id := range r.identities {
		if id.alg == w.alg && bytes.Equal(id.kid, w.kid) {
			return id
		}
	}
	return nil
}

// srHOTP is RFC 4226 §5.3 with d digits, leading zeros kept.
func srHOTP(secret []byte, ctr uint64, d int) string {
	m := hmac.New(sha1.New, secret)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], ctr)
	m.Write(c[:])
	s := m.Sum(nil)
	off := s[19] & 0x0f
	bin := uint64(binary.BigEndian.Uint32(s[off:]) & 0x7fffffff)
	if d < 10 {
		p := uint64(1)
		for range d {
			p *= 10
		}
		bin %= p
	}
	code := strconv.FormatUint(bin, 10)
	for len(code) < d {
		code = "0" + code
	}
	return code
}

// srVerify is §4.5 for one key.
func srVerify(k *srSigKey, A, S []byte) bool {
	switch k.alg {
	case srSigEd25519:
		return len(S) == ed25519.SignatureSize && ed25519.Verify(k.ed, A, S)
	case srSigES256:
		if len(S) != 64 {
			return false
		}
		h := sha256.Sum256(A)
		// ecdsa.Verify refuses r or s that is 0 or not below the group order.
		return ecdsa.Verify(k.ec, h[:], new(big.Int).SetBytes(S[:32]), new(big.Int).SetBytes(S[32:]))
	case srSigPS256:
		if len(S) != k.rsa.Size() {
			return false
		}
		h := sha256.Sum256(A)
		return rsa.VerifyPSS(k.rsa, crypto.SHA256, h[:], S, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}) == nil
	}
	return false
}

// decrypt is the work of step 11: choose the wrapped key, unwrap CK, open P.
// It notes the conditions of dec-unwrap and dec-tag and goes on as far as it
// can, so that either can be switched off.
func (r *srReader) decrypt(o *srOpen) {
	o.plain = o.f.P
	if !o.h.hasEnc {
		return
	}
	switch {
	case o.h.hasPSK:
		if ks := o.pskKeys(); len(ks) > 0 {
			o.ck = ks[0].key
		}
	case o.h.hasWrapped:
		o.wrap = r.chooseWrap(o.h)
		if o.wrap == nil {
			o.unwrapFailed = true
			break
		}
		ck, err := srUnwrap(r.identityFor(o.wrap), o.wrap, false)
		if err != nil || len(ck) != 32 {
			o.unwrapFailed = true
			ck = r.lenientKey(o.h)
		}
		o.ck = ck
	}
	o.plain, o.tagFailed = srOpenGCM(o.ck, o.f.P, o.f.buf[:5+len(o.f.H)]) // 0x01 || u32 len(H) || H
}

// lenientKey is the key a reader without dec-unwrap would decrypt with:
// the first entry it holds a key for that unwraps at all, leniently, to a
// key of any AES size.
func (r *srReader) lenientKey(h *srHeader) []byte {
	for i := range h.wraps {
		w := &h.wraps[i]
		id := r.identityFor(w)
		if id == nil {
			continue
		}
		if ck, err := srUnwrap(id, w, true); err == nil && (len(ck) == 16 || len(ck) == 24 || len(ck) == 32) {
			return ck
		}
	}
	return nil
}

// srUnwrap gives CK from a wrapped key (§4.6). lenient reads an RSA wk not
// as long as the modulus as the integer it encodes (dec-unwrap switched off).
func srUnwrap(id *srIdentity, w *srWrap, lenient bool) ([]byte, error) {
	switch w.alg {
	case srWrapX25519, srWrapXWing:
		return hpke.Open(id.hpke, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(srWrapInfo), w.wk)
	case srWrapRSA:
		wk := w.wk
		k := id.rsa.Size()
		if len(wk) != k {
			if !lenient {
				return nil, errors.New("RSA wk not as long as the modulus")
			}
			trimmed := bytes.TrimLeft(wk, "\x00")
			if len(trimmed) > k {
				return nil, errors.New("RSA wk too long")
			}
			wk = append(make([]byte, k-len(trimmed)), trimmed...)
		}
		return rsa.DecryptOAEP(sha256.New(), nil, id.rsa, wk, []byte(srWrapInfo))
	}
	return nil, errors.New("unknown wrap algorithm")
}

// srOpenGCM opens P = nonce || ciphertext || tag under CK with the given
// associated data (§4.6). When the tag does not check it also gives the
// plaintext that a receiver skipping dec-tag would release.
func srOpenGCM(ck, P, aad []byte) (plain []byte, failed bool) {
	if (len(ck) != 16 && len(ck) != 24 && len(ck) != 32) || len(P) < 28 {
		return nil, true
	}
	block, _ := aes.NewCipher(ck)
	g, _ := cipher.NewGCM(block)
	nonce, ct := P[:12], P[12:]
	pt, err := g.Open(nil, nonce, ct, aad)
	if err == nil {
		return pt, false
	}
	// GCM's keystream for the message starts at counter 2 (SP 800-38D).
	iv := append(slices.Clone(nonce), 0, 0, 0, 2)
	body := ct[:len(ct)-16]
	out := make([]byte, len(body))
	cipher.NewCTR(block, iv).XORKeyStream(out, body)
	return out, true
}

// open runs the steps of §9.1 in order and stops at the first refusal.
func (r *srReader) open(E []byte) srResult {
	o := &srOpen{E: E}
	for step := 1; step <= 12; step++ {
		// What the step reads or computes before its rules are checked.
		switch step {
		case 2:
			o.f = srReadFrame(E)
		case 3:
			o.h = srReadHeader(o.f.H)
			o.D = srDigest(o.f)
			o.A = append([]byte(srAPrefix), o.D...)
		case 5:
			o.peer = r.peers[string(o.h.from)]
			if o.peer == nil {
				// An unknown sender (key-sender switched off): no keys, the
				// default policy.
				o.peer = &srPeer{id: string(o.h.from), skew: srDefaultSkew, lifetime: srDefaultLifetime}
			}
		case 6:
			o.timeRequest = o.peer.clockless && o.h.kind == srReq && string(o.h.topic) == srTimeMethod
		case 11:
			r.decrypt(o)
		}
		for i := range srRules {
			rule := &srRules[i]
			if rule.window || rule.step != strconv.Itoa(step) || r.off[rule.id] {
				continue
			}
			if rule.check(r, o) {
				if rule.id == "replay-look" {
					return srResult{class: rule.class, rule: rule.id + ": " + o.lookRule}
				}
				return srResult{class: rule.class, rule: rule.id}
			}
		}
		if step == 12 {
			// Without the look at step 9 the check-and-update refuses by
			// the window rules themselves.
			if !o.looked {
				if id := r.windowRefuses(o); id != "" {
					return srResult{class: srRuleByID[id].class, rule: id}
				}
			}
			r.record(o)
		}
	}
	return srResult{class: "ok", payload: o.plain, digest: o.D}
}

// ---------------------------------------------------------------------------
// §4.7 from the text: X-Wing decapsulation and the HPKE key schedule of
// RFC 9180 §5.1, written from SPEC.md, to check that what SPEC.md says is
// what crypto/hpke does.

func srXWingPublic(seed []byte) (pub []byte, dk *mlkem.DecapsulationKey768, skX *ecdh.PrivateKey, err error) {
	x := sha3.SumSHAKE256(seed, 96)
	dk, err = mlkem.NewDecapsulationKey768(x[:64])
	if err != nil {
		return nil, nil, nil, err
	}
	skX, err = ecdh.X25519().NewPrivateKey(x[64:96])
	if err != nil {
		return nil, nil, nil, err
	}
	pub = append(dk.EncapsulationKey().Bytes(), skX.PublicKey().Bytes()...)
	return pub, dk, skX, nil
}

func srXWingUnwrap(seed, wk []byte) ([]byte, error) {
	if len(wk) != 1168 {
		return nil, errors.New("wk is not 1168 bytes")
	}
	_, dk, skX, err := srXWingPublic(seed)
	if err != nil {
		return nil, err
	}
	enc, ct := wk[:1120], wk[1120:]
	ctM, ctX := enc[:1088], enc[1088:]
	ssM, err := dk.Decapsulate(ctM)
	if err != nil {
		return nil, err
	}
	peer, err := ecdh.X25519().NewPublicKey(ctX)
	if err != nil {
		return nil, err
	}
	ssX, err := skX.ECDH(peer)
	if err != nil {
		return nil, err
	}
	pkX := skX.PublicKey().Bytes()
	h := sha3.New256()
	for _, part := range [][]byte{ssM, ssX, ctX, pkX, {0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c}} {
		h.Write(part)
	}
	shared := h.Sum(nil)

	suite := []byte{'H', 'P', 'K', 'E', 0x64, 0x7A, 0x00, 0x01, 0x00, 0x02}
	extract := func(salt []byte, label string, ikm []byte) []byte {
		in := append(append(append([]byte("HPKE-v1"), suite...), label...), ikm...)
		prk, _ := hkdf.Extract(sha256.New, in, salt)
		return prk
	}
	expand := func(prk []byte, label string, info []byte, n int) []byte {
		in := binary.BigEndian.AppendUint16(nil, uint16(n))
		in = append(append(append(append(in, "HPKE-v1"...), suite...), label...), info...)
		out, _ := hkdf.Expand(sha256.New, prk, string(in), n)
		return out
	}
	pskIDHash := extract(nil, "psk_id_hash", nil)
	infoHash := extract(nil, "info_hash", []byte(srWrapInfo))
	ctx := append(append([]byte{0x00}, pskIDHash...), infoHash...)
	secret := extract(shared, "secret", nil)
	key := expand(secret, "key", ctx, 32)
	nonce := expand(secret, "base_nonce", ctx, 12)
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	return g.Open(nil, nonce, ct, nil)
}
