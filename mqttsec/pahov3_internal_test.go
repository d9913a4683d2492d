package mqttsec

import (
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// The store never shares a PUBLISH packet object with paho's writer.
func TestCopyingStoreSharesNoPacket(t *testing.T) {
	s := copyingStore{mqtt.NewMemoryStore()}
	s.Open()
	defer s.Close()
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.MessageID, p.TopicName = 1, 7, "t"
	s.Put("o.7", p)
	p.Dup = true // the writer's copy changes
	a, b := s.Get("o.7").(*packets.PublishPacket), s.Get("o.7").(*packets.PublishPacket)
	if a == p || b == p || a == b {
		t.Fatal("store returned a shared packet")
	}
	if a.Dup || a.MessageID != 7 || a.TopicName != "t" {
		t.Fatalf("stored packet changed or lost: %+v", a)
	}
	a.Dup = true
	if s.Get("o.7").(*packets.PublishPacket).Dup {
		t.Fatal("a handed-out copy changed the stored packet")
	}
	if s.Get("o.99") != nil {
		t.Fatal("missing key returned a packet")
	}
}
