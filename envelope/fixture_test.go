package envelope

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/sha256"
	"os"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/rsasign"
)

// testSecrets is the raw key material of the test world. Everything is
// derived from fixed labels so vectors can be rebuilt bit for bit; the RSA
// keys are fixed files under testdata/.
type testSecrets struct {
	HMAC, HOTP, PSK    []byte
	Ed25519Seed        []byte
	ES256Scalar        []byte
	X25519, XWingSeed  []byte
	RSASign, RSAOAEP   *rsa.PrivateKey
	OtherHMAC          []byte // a key the receiver does not trust
	OtherEd25519Seed   []byte
	OtherX25519Private []byte
}

func derive(label string) []byte {
	s := sha256.Sum256([]byte("mqttsec test key: " + label))
	return s[:]
}

func loadRSA(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := rsasign.ParsePrivateKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestSecrets(t testing.TB) *testSecrets {
	return &testSecrets{
		HMAC:               derive("hmac"),
		HOTP:               derive("hotp")[:20],
		PSK:                derive("psk"),
		Ed25519Seed:        derive("ed25519"),
		ES256Scalar:        derive("es256"),
		X25519:             derive("x25519"),
		XWingSeed:          derive("xwing"),
		RSASign:            loadRSA(t, "rsa2048.pem"),
		RSAOAEP:            loadRSA(t, "rsa2048-oaep.pem"),
		OtherHMAC:          derive("other hmac"),
		OtherEd25519Seed:   derive("other ed25519"),
		OtherX25519Private: derive("other x25519"),
	}
}

// world is a sender ("client") and a receiver ("gateway") holding every kind
// of key, plus a third party ("eve") with its own keys.
type world struct {
	t       testing.TB
	sec     *testSecrets
	now     time.Time
	hmac    *HMACKey
	hotp    *HOTPKey
	psk     *AEADKey
	ed      Signer
	es      Signer
	ps      Signer
	rs      Signer // legacy RS256
	x25519  Recipient
	xwing   Recipient
	rsaoaep Recipient
	ids     []Identity // the gateway's own decryption keys
	peer    *Peer      // the gateway's view of the client
	ctr     *MemoryCounter
	replay  *MemoryStore
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newWorld(t testing.TB) *world {
	t.Helper()
	sec := newTestSecrets(t)
	w := &world{t: t, sec: sec, now: testNow}
	w.hmac = must[*HMACKey](t)(NewHMACKey(sec.HMAC))
	w.hotp = must[*HOTPKey](t)(NewHOTPKey(sec.HOTP, 6))
	w.psk = must[*AEADKey](t)(NewAEADKey(sec.PSK))
	edKey := ed25519.NewKeyFromSeed(sec.Ed25519Seed)
	w.ed = must[Signer](t)(NewEd25519Signer(edKey))
	esKey := must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), sec.ES256Scalar))
	w.es = must[Signer](t)(NewECDSASigner(esKey))
	w.ps = must[Signer](t)(NewRSASigner(sec.RSASign))
	w.rs = newLegacyRSASigner(sec.RSASign)

	xPriv := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).NewPrivateKey(sec.X25519))
	xwPriv := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().NewPrivateKey(sec.XWingSeed))
	w.x25519 = must[Recipient](t)(NewHPKERecipient(xPriv.PublicKey()))
	w.xwing = must[Recipient](t)(NewHPKERecipient(xwPriv.PublicKey()))
	w.rsaoaep = must[Recipient](t)(NewRSARecipient(&sec.RSAOAEP.PublicKey))
	w.ids = []Identity{
		must[Identity](t)(NewHPKEIdentity(xPriv)),
		must[Identity](t)(NewHPKEIdentity(xwPriv)),
		must[Identity](t)(NewRSAIdentity(sec.RSAOAEP)),
	}
	w.peer = &Peer{
		ID:       "client",
		HMACKeys: []*HMACKey{w.hmac},
		HOTPKeys: []*HOTPKey{w.hotp},
		AEADKeys: []*AEADKey{w.psk},
		Verifiers: []Verifier{
			must[Verifier](t)(NewEd25519Verifier(edKey.Public().(ed25519.PublicKey))),
			must[Verifier](t)(NewECDSAVerifier(&esKey.PublicKey)),
			must[Verifier](t)(NewRSAVerifier(&sec.RSASign.PublicKey)),
			must[Verifier](t)(NewLegacyRSAVerifier(&sec.RSASign.PublicKey)),
		},
	}
	w.ctr = NewMemoryCounter(0)
	w.replay = must[*MemoryStore](t)(NewMemoryStore(0))
	return w
}

func (w *world) clock() time.Time { return w.now }

func (w *world) sealer() *Sealer {
	return &Sealer{ID: "client", Counter: w.ctr, Now: w.clock}
}

func (w *world) opener() *Opener {
	keys := must[*Keys](w.t)(NewKeys(w.ids, w.peer))
	return &Opener{ID: "gateway", Keys: keys, Replay: w.replay, Now: w.clock}
}

// gatewaySealer seals as the gateway, which answers the client's requests.
func (w *world) gatewaySealer() *Sealer {
	return &Sealer{ID: "gateway", Counter: NewMemoryCounter(0), Now: w.clock}
}

// clientOpener opens, as the client, what the gateway sends under the
// world's HMAC key.
func (w *world) clientOpener() *Opener {
	keys := must[*Keys](w.t)(NewKeys(nil, &Peer{ID: "gateway", HMACKeys: []*HMACKey{w.hmac}}))
	return &Opener{ID: "client", Keys: keys, Replay: must[*MemoryStore](w.t)(NewMemoryStore(0)), Now: w.clock}
}

// request returns the parameters of a request in the text form, which most
// of this package's tests read and mutate as JSON; tests of the other forms
// set Version, and TestDefaultVersion covers a zero one.
func (w *world) request(method string) *Params {
	return &Params{Kind: Request, To: []string{"gateway"}, Topic: method, ReplyTo: "mqttsec/client/reply", Version: Version1}
}

var expectRequest = &Expect{Kinds: Request}

func edFromSeed(seed []byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seed) }
