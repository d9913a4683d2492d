package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/mqttsec/mqttsec/internal/keyfile"
)

// metrics is the gateway's meter provider, exported in the Prometheus
// text format, with the Go runtime's and the process's own metrics
// beside mqttsec's.
type metrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

func newMetrics() (*metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &metrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// opsServer serves /metrics, /healthz and /readyz on its listener.
type opsServer struct {
	srv  *http.Server
	addr string
	done chan error
}

// serveOps listens on addr and serves, until close: /metrics (the
// Prometheus text format), /healthz (200 while the process serves HTTP)
// and /readyz (200 while ready returns nil; 503 and the reason while not).
func serveOps(addr string, metrics http.Handler, ready func() error) (*opsServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	o := &opsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		addr: l.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { o.done <- o.srv.Serve(l) }()
	return o, nil
}

// close stops serving, giving requests under way until ctx ends, and
// then closes their connections.
func (o *opsServer) close(ctx context.Context) error {
	err := o.srv.Shutdown(ctx)
	if err != nil {
		o.srv.Close()
	}
	if serveErr := <-o.done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

// certificate is a certificate the gateway depends on: its file, what it
// is for, and when it expires.
type certificate struct {
	file, role, subject string
	notAfter            time.Time
}

// certificates reads the certificates of the PEM files named by role (the
// client certificate, the CA); an empty name is skipped. A block that does
// not parse is skipped as TLSConfig skips it, and said in skipped.
func certificates(files map[string]string) (certs []certificate, skipped []error, err error) {
	for role, file := range files {
		if file == "" {
			continue
		}
		data, err := keyfile.ReadPublic(file)
		if err != nil {
			return nil, nil, err
		}
		for rest := data; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				skipped = append(skipped, fmt.Errorf("%s: a certificate that does not parse: %w", file, err))
				continue
			}
			certs = append(certs, certificate{file: file, role: role, subject: c.Subject.String(), notAfter: c.NotAfter})
		}
	}
	return certs, skipped, nil
}

// earliest is, for each role and file, the certificate that expires
// first.
func earliest(certs []certificate) []certificate {
	type key struct{ role, file string }
	first := map[key]certificate{}
	var order []key
	for _, c := range certs {
		k := key{c.role, c.file}
		f, seen := first[k]
		if !seen {
			order = append(order, k)
		}
		if !seen || c.notAfter.Before(f.notAfter) {
			first[k] = c
		}
	}
	out := make([]certificate, len(order))
	for i, k := range order {
		out[i] = first[k]
	}
	return out
}

// watchExpiry logs, at once and then every check until ctx ends, a
// warning for each certificate that expires within warn, and an error
// for each that has expired; and reports when the first certificate of
// each file expires as the gauge mqttsec.tls.certificate.expiry (Unix
// seconds) through meter. It returns when ctx ends.
func watchExpiry(ctx context.Context, log *slog.Logger, meter metric.Meter, certs []certificate, warn, check time.Duration) {
	first := earliest(certs)
	_, err := meter.Int64ObservableGauge("mqttsec.tls.certificate.expiry", metric.WithUnit("s"),
		metric.WithDescription("When the first certificate of a file the gateway uses expires, in seconds since the Unix epoch."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for _, c := range first {
				o.Observe(c.notAfter.Unix(), metric.WithAttributes(attribute.String("role", c.role), attribute.String("file", c.file)))
			}
			return nil
		}))
	if err != nil {
		log.Error("gateway: no certificate expiry metric", "err", err)
	}
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		logExpiry(log, certs, warn, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logExpiry logs the certificates that have expired, or expire within
// warn of now.
func logExpiry(log *slog.Logger, certs []certificate, warn time.Duration, now time.Time) {
	for _, c := range certs {
		left := c.notAfter.Sub(now)
		switch {
		case left <= 0:
			log.Error("gateway: certificate expired", "role", c.role, "file", c.file, "subject", c.subject, "not_after", c.notAfter.UTC())
		case left <= warn:
			log.Warn("gateway: certificate expires soon", "role", c.role, "file", c.file, "subject", c.subject,
				"not_after", c.notAfter.UTC(), "left", left.Round(time.Hour).String())
		}
	}
}
