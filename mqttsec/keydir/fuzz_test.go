package keydir

import (
	"errors"
	"testing"
)

// FuzzPeerConf: the peer.conf parser never panics and reports every
// problem as a FileError.
func FuzzPeerConf(f *testing.F) {
	f.Add("send hmac sig\nrequire hmac\nsign ed25519\nhotp-digits 8\nttl 30s\nlegacy-rs256\n")
	f.Add("send enc # comment\n")
	f.Add("ttl\n")
	f.Fuzz(func(t *testing.T, conf string) {
		c, err := parsePeerConfData("peer.conf", []byte(conf))
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FileError", err)
			}
			return
		}
		if c.send == 0 || (c.hotpDigits != 6 && c.hotpDigits != 8) || c.ttl < 0 {
			t.Fatalf("accepted an impossible configuration: %+v", c)
		}
	})
}
