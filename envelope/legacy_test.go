package envelope

import (
	"crypto/rsa"

	"github.com/mqttsec/mqttsec/rsasign"
)

// legacyRSASigner makes RS256 signatures, as a legacy peer would; the package
// itself only verifies them, and only when a policy allows it.
type legacyRSASigner struct {
	id  string
	key *rsa.PrivateKey
}

func newLegacyRSASigner(key *rsa.PrivateKey) *legacyRSASigner {
	return &legacyRSASigner{id: PublicKeyID(RS256, rsaPublicBytes(&key.PublicKey)), key: key}
}

func (s *legacyRSASigner) Algorithm() Algorithm { return RS256 }
func (s *legacyRSASigner) KeyID() string        { return s.id }
func (s *legacyRSASigner) Sign(msg []byte) ([]byte, error) {
	return rsasign.SignLegacyPKCS1v15(s.key, msg)
}
