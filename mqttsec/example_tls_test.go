package mqttsec_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/big"
	"net"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/mqttsec/mqttsec/mqttsec"
)

// A transport over TLS trusts the certificates in TransportOptions.TLS,
// or, without it, the system's roots. With a broker of your own and PEM
// files:
//
//	cfg, err := mqttsec.TLSConfig(mqttsec.TLSFiles{CAFile: "ca.pem"}) // and CertFile, KeyFile for mTLS
//	...
//	tr, err := mqttsec.NewTransport("tls://broker.example:8883", mqttsec.TransportOptions{
//		ClientID: "door-7", TLS: cfg,
//		Username: "door-7", Password: password, // if the broker wants them
//	})
//
// Here an embedded broker listens with a self-signed certificate made on
// the spot, which the first transport is given and the second, relying on
// the system's roots, refuses.
func ExampleNewTransport_tls() {
	cert, err := selfSignedCertificate("127.0.0.1")
	if err != nil {
		log.Fatal(err)
	}
	mq := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := mq.AddHook(new(auth.AllowHook), nil); err != nil {
		log.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tls", Address: "127.0.0.1:0", TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}})
	if err := mq.AddListener(tcp); err != nil {
		log.Fatal(err)
	}
	if err := mq.Serve(); err != nil {
		log.Fatal(err)
	}
	defer mq.Close()
	broker := "tls://" + tcp.Address()

	trusted := x509.NewCertPool()
	trusted.AddCert(cert.Leaf)
	tr, err := mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: "door-7", TLS: &tls.Config{RootCAs: trusted}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("with the certificate:", tryConnect(tr, 10*time.Second))

	tr, err = mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: "door-8"})
	if err != nil {
		log.Fatal(err)
	}
	err = tryConnect(tr, 500*time.Millisecond)
	fmt.Println("with the system's roots:", errors.As(err, new(x509.UnknownAuthorityError)))
	// Output:
	// with the certificate: <nil>
	// with the system's roots: true
}

// tryConnect starts tr (as a Client or Server would) and closes it again.
func tryConnect(tr mqttsec.Transport, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tr.Start(ctx, func(mqttsec.Inbound) {}); err != nil {
		return err
	}
	return tr.Close(ctx)
}

// selfSignedCertificate returns a certificate for the IP address ip,
// valid for a day, signed by its own key.
func selfSignedCertificate(ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
