package packetlimit

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
)

// chunked is a connection that reads src in pieces of at most the sizes
// given, in turn.
type chunked struct {
	net.Conn
	src   []byte
	sizes []int
	i     int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	n := len(c.src)
	if len(c.sizes) > 0 {
		n = min(n, c.sizes[c.i%len(c.sizes)])
		c.i++
	}
	n = copy(p, c.src[:n])
	c.src = c.src[n:]
	return n, nil
}

// readAll reads w to its first error with reads of at most step bytes.
func readAll(w net.Conn, step int) ([]byte, error) {
	var out []byte
	buf := make([]byte, step)
	for {
		n, err := w.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func vbi(n int) []byte { return appendLength(nil, n) }

// pub builds a PUBLISH: QoS 1 with packet id 7, v5 properties if props is
// not nil.
func pub(topic string, props, payload []byte) []byte {
	var body []byte
	body = append(body, byte(len(topic)>>8), byte(len(topic)))
	body = append(body, topic...)
	body = append(body, 0, 7)
	if props != nil {
		body = append(append(body, vbi(len(props))...), props...)
	}
	body = append(body, payload...)
	return append(append([]byte{0x32}, vbi(len(body))...), body...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestWrap(t *testing.T) {
	const limit = 64
	big := bytes.Repeat([]byte{'x'}, 1000)
	suback := []byte{0x90, 0x03, 0x00, 0x07, 0x01}
	props := []byte{0x01, 0x01} // payload format indicator
	tests := []struct {
		name    string
		v5      bool
		in      []byte
		want    []byte
		dropped []string // topics whose payload was dropped
		err     error    // nil: the stream ends with io.EOF
	}{
		{"small packets pass untouched", false,
			cat(suback, pub("a/b", nil, []byte("hi")), []byte{0xd0, 0x00}),
			cat(suback, pub("a/b", nil, []byte("hi")), []byte{0xd0, 0x00}), nil, nil},
		{"a packet of exactly the limit passes", false,
			pub("t", nil, bytes.Repeat([]byte{'y'}, limit-5)),
			pub("t", nil, bytes.Repeat([]byte{'y'}, limit-5)), nil, nil},
		{"an oversize publish loses its payload only (v3)", false,
			cat(pub("big", nil, big), suback),
			cat(pub("big", nil, nil), suback), []string{"big"}, nil},
		{"an oversize publish loses its payload only (v5)", true,
			cat(pub("big", props, big), pub("s", props, []byte("ok"))),
			cat(pub("big", props, nil), pub("s", props, []byte("ok"))), []string{"big"}, nil},
		{"an oversize publish of QoS 0 has no packet id", false,
			cat([]byte{0x30}, vbi(2+1+len(big)), []byte{0, 1, 'q'}, big),
			[]byte{0x30, 0x03, 0, 1, 'q'}, []string{"q"}, nil},
		{"an oversize packet of another kind fails the connection after what came before", false,
			cat(suback, []byte{0x90}, vbi(1000), big),
			suback, nil, ErrTooLarge},
		{"a length of five bytes is malformed", false,
			cat(suback, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}),
			suback, nil, ErrMalformed},
		{"a topic running past its packet is malformed", false,
			cat([]byte{0x32}, vbi(100), []byte{0x01, 0x00}, big[:98]),
			nil, nil, ErrMalformed},
		{"v5 properties running past their packet are malformed", true,
			cat([]byte{0x32}, vbi(100), []byte{0, 1, 't', 0, 7}, vbi(200), big[:200]),
			nil, nil, ErrMalformed},
		{"a publish header over the limit fails the connection", true,
			cat([]byte{0x32}, vbi(1000), []byte{0, 1, 't', 0, 7}, vbi(limit), big[:1000-5-1]),
			nil, nil, ErrTooLarge},
		{"a stream cut inside a passing packet passes what came", false,
			pub("a", nil, []byte("hello"))[:6],
			pub("a", nil, []byte("hello"))[:6], nil, nil},
	}
	for _, tt := range tests {
		for _, sizes := range [][]int{nil, {1}, {3, 1, 7}} {
			for _, step := range []int{1, 5, 4096} {
				var dropped []string
				var refused []error
				w := Wrap(&chunked{src: tt.in, sizes: sizes}, Options{Limit: limit, V5: tt.v5, Dropped: func(topic string, size int) {
					dropped = append(dropped, topic)
				}, Refused: func(err error) { refused = append(refused, err) }})
				got, err := readAll(w, step)
				if !bytes.Equal(got, tt.want) {
					t.Errorf("%s (chunks %v, reads of %d): read\n%x\nwant\n%x", tt.name, sizes, step, got, tt.want)
				}
				wantErr := tt.err
				if wantErr == nil {
					wantErr = io.EOF
				}
				if !errors.Is(err, wantErr) && !(wantErr == io.EOF && errors.Is(err, io.ErrUnexpectedEOF)) {
					t.Errorf("%s (chunks %v, reads of %d): error %v, want %v", tt.name, sizes, step, err, wantErr)
				}
				if len(dropped) != len(tt.dropped) || (len(dropped) > 0 && dropped[0] != tt.dropped[0]) {
					t.Errorf("%s: dropped %q, want %q", tt.name, dropped, tt.dropped)
				}
				if tt.err == nil && len(refused) != 0 || tt.err != nil && (len(refused) != 1 || !errors.Is(refused[0], tt.err)) {
					t.Errorf("%s: refused %v, want %v", tt.name, refused, tt.err)
				}
				if _, again := w.Read(make([]byte, 8)); again == nil {
					t.Errorf("%s: a read after the error succeeded", tt.name)
				}
			}
		}
	}
}

// An announced 200 MiB publish costs the reader its header, not 200 MiB.
func TestAnnouncedSizeIsNotAllocated(t *testing.T) {
	in := cat([]byte{0x32}, vbi(200<<20), []byte{0, 1, 't', 0, 7}, bytes.Repeat([]byte{'z'}, 1<<20))
	w := Wrap(&chunked{src: in}, Options{Limit: 64 << 10})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readAll(w, 32<<10)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.EOF) || !bytes.Equal(got, []byte{0x32, 0x05, 0, 1, 't', 0, 7}) {
		t.Fatalf("read %x, %v", got, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading allocated %d bytes", grew)
	}
}

// reference transforms a whole stream as Wrap's reader must, packet by
// packet, without streaming: the bytes it passes and the error that ends
// them (nil: the stream ended).
func reference(in []byte, limit int, v5 bool) ([]byte, error) {
	var out []byte
	for len(in) > 0 {
		first := in[0]
		n, used, ok := 0, 0, false
		for i := 0; i < 4 && 1+i < len(in); i++ {
			n |= int(in[1+i]&0x7f) << (7 * i)
			used = i + 1
			if in[1+i]&0x80 == 0 {
				ok = true
				break
			}
		}
		if !ok {
			if used == 4 {
				return out, ErrMalformed
			}
			return out, nil
		}
		rest := in[1+used:]
		if n <= limit {
			out = append(out, in[:1+used]...)
			out = append(out, rest[:min(n, len(rest))]...)
			if n > len(rest) {
				return out, nil
			}
			in = rest[n:]
			continue
		}
		if first>>4 != publish {
			return out, ErrTooLarge
		}
		// The variable header, within min(n, limit) bytes and the stream.
		h := 0
		need := func(k int) error {
			switch {
			case k > n-h:
				return ErrMalformed
			case h+k > limit:
				return ErrTooLarge
			case h+k > len(rest):
				return io.EOF
			}
			h += k
			return nil
		}
		if err := need(2); err != nil {
			return out, endOf(err)
		}
		if err := need(int(rest[0])<<8 | int(rest[1])); err != nil {
			return out, endOf(err)
		}
		if first>>1&3 > 0 {
			if err := need(2); err != nil {
				return out, endOf(err)
			}
		}
		if v5 {
			p, pu, pok := 0, 0, false
			for i := 0; i < 4 && h+i < len(rest); i++ {
				p |= int(rest[h+i]&0x7f) << (7 * i)
				pu = i + 1
				if rest[h+i]&0x80 == 0 {
					pok = true
					break
				}
			}
			if !pok {
				if pu == 4 {
					return out, ErrMalformed
				}
				return out, nil
			}
			if h+pu > n {
				return out, ErrMalformed
			}
			h += pu
			if err := need(p); err != nil {
				return out, endOf(err)
			}
		}
		out = append(append(append(out, first), vbi(h)...), rest[:h]...)
		if n > len(rest) {
			return out, nil
		}
		in = rest[n:]
	}
	return out, nil
}

func endOf(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// FuzzWrap holds the streaming reader, fed in random pieces and read in
// random steps, to the whole-stream reference.
func FuzzWrap(f *testing.F) {
	big := bytes.Repeat([]byte{'x'}, 300)
	f.Add(cat(pub("big", nil, big), []byte{0x90, 0x03, 0, 7, 1}), uint16(64), false, uint64(1))
	f.Add(cat(pub("big", []byte{1, 1}, big), pub("s", []byte{}, []byte("ok"))), uint16(64), true, uint64(2))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, uint16(10), false, uint64(3))
	f.Add(cat([]byte{0x90}, vbi(500), big), uint16(100), true, uint64(4))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16, v5 bool, seed uint64) {
		want, wantErr := reference(in, int(limit), v5)
		r := rand.New(rand.NewPCG(seed, seed>>7))
		sizes := []int{1 + r.IntN(16), 1 + r.IntN(300), 1 + r.IntN(3)}
		got, err := readAll(Wrap(&chunked{src: in, sizes: sizes}, Options{Limit: int(limit), V5: v5}), 1+r.IntN(100))
		if !bytes.Equal(got, want) {
			t.Fatalf("read\n%x\nwant\n%x", got, want)
		}
		switch {
		case wantErr == nil:
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v, want the end of the stream", err)
			}
		case !errors.Is(err, wantErr):
			t.Fatalf("error %v, want %v", err, wantErr)
		}
	})
}
