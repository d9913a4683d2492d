package enroll_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/mqttsec/mqttsec/mqttsec/enroll"
)

// A whole enrollment in memory: the device shows a code, the operator
// approves it, the device's first hello gets the gateway's challenge and its
// second the welcome. Over MQTT, the approval travels as an encrypted
// request (method enroll.Method), the hellos on <prefix>/<gateway>/enroll
// and the challenge and the welcome on <prefix>/<id>/enroll.
func Example() {
	// The gateway: its key pair, the templates it knows, and what adds a
	// device to its keyring.
	gatewayKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyring := map[string][]*ecdsa.PublicKey{}
	reg, err := enroll.NewRegistrar(enroll.RegistrarConfig{
		ID: "gateway", Key: gatewayKey, Templates: []string{"door"},
		MayApprove: func(operator string) bool { return operator == "ops-console" },
		Known:      func(id string) bool { return len(keyring[id]) > 0 },
		Add: func(e enroll.Enrollment) error {
			if e.Replace {
				delete(keyring, e.ID) // and every shared secret of the id
			}
			keyring[e.ID] = append(keyring[e.ID], e.Key)
			fmt.Printf("gateway adds %s (template %s, approved by %s)\n", e.ID, e.Template, e.Operator)
			return nil
		},
		HighestCounter: func(id string) (uint64, error) { return 0, nil }, // from the replay store
	})
	if err != nil {
		panic(err)
	}

	// The device, at boot: its key pair (made on the first start, then
	// kept) and a fresh PoP seed. It shows its code.
	device, err := enroll.NewDevice(enroll.DeviceConfig{ID: "door-7"})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	shown := device.Code(now).Text() // on a display, or as a QR code

	// The operator reads the code and approves it.
	code, err := enroll.ParseCode(shown)
	if err != nil {
		panic(err)
	}
	payload, err := enroll.FromCode(code, "door").MarshalBinary()
	if err != nil {
		panic(err)
	}
	// ... sealed in an encrypted request from ops-console; the gateway
	// opens it and hands it over with the envelope's counter:
	err = reg.Approve(enroll.ApprovalRequest{Operator: "ops-console", Counter: 1, Encrypted: true, Payload: payload})
	if err != nil {
		panic(err)
	}

	// The device says hello; the gateway answers with a challenge.
	hello, err := device.Hello(now, "gateway")
	if err != nil {
		panic(err)
	}
	reply, kind, err := reg.HandleHello(hello)
	if err != nil {
		panic(err)
	}
	fmt.Println("gateway replies with a", kind)
	if err := device.AcceptChallenge(reply); err != nil {
		panic(err)
	}
	// The next hello carries the challenge; the gateway answers with a
	// welcome.
	hello, err = device.Hello(now, "gateway")
	if err != nil {
		panic(err)
	}
	reply, kind, err = reg.HandleHello(hello)
	if err != nil {
		panic(err)
	}
	fmt.Println("gateway replies with a", kind)
	res, err := device.AcceptWelcome(reply)
	if err != nil {
		panic(err)
	}
	fmt.Printf("device is %s at %s, counter from %d\n", res.ID, res.GatewayID, res.CounterFloor)
	fmt.Println("keys for door-7:", len(keyring["door-7"]))

	// The same hello again (a broker replaying it) gets a welcome but
	// adds nothing; the device no longer waits for one.
	again, _, _ := reg.HandleHello(hello)
	_, err = device.AcceptWelcome(again)
	fmt.Println("a welcome after the first:", enroll.Class(err))
	fmt.Println("enrolled:", reg.Stats().Enrolled)
	// Output:
	// gateway replies with a challenge
	// gateway adds door-7 (template door, approved by ops-console)
	// gateway replies with a welcome
	// device is door-7 at gateway, counter from 1
	// keys for door-7: 1
	// a welcome after the first: enroll: context
	// enrolled: 1
}

// An approval must arrive encrypted, from an operator that may approve,
// naming a template the gateway knows.
func ExampleRegistrar_Approve() {
	gatewayKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	reg, _ := enroll.NewRegistrar(enroll.RegistrarConfig{
		ID: "gateway", Key: gatewayKey, Templates: []string{"door"},
		MayApprove:     func(operator string) bool { return operator == "ops-console" },
		Known:          func(string) bool { return false },
		Add:            func(enroll.Enrollment) error { return nil },
		HighestCounter: func(string) (uint64, error) { return 0, nil },
	})
	device, _ := enroll.NewDevice(enroll.DeviceConfig{ID: "door-7"})
	code := device.Code(time.Now())
	door, _ := enroll.FromCode(code, "door").MarshalBinary()
	safe, _ := enroll.FromCode(code, "safe").MarshalBinary()

	for _, tc := range []struct {
		operator  string
		payload   []byte
		encrypted bool
	}{
		{"ops-console", door, false},
		{"door-9", door, true},
		{"ops-console", safe, true},
		{"ops-console", door, true},
	} {
		err := reg.Approve(enroll.ApprovalRequest{Operator: tc.operator, Counter: 1, Encrypted: tc.encrypted, Payload: tc.payload})
		if err != nil {
			// The gateway answers with the class's name as the error code.
			fmt.Println("refused:", enroll.Class(err).(enroll.Error).Name())
			continue
		}
		fmt.Println("approved")
	}
	// Output:
	// refused: forbidden
	// refused: forbidden
	// refused: bad-request
	// approved
}

// A code's id may hold colons: ParseCode reads F and the PoP from the
// right.
func ExampleParseCode() {
	c, err := enroll.ParseCode("mqttsec-enroll:1:site:door:7:BaPRDxFRzBw-vigIsfa7NZJv44sYu5yet8wed8U18h8:tTb4bK-l4XIF3Dua7vE6yA")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.ID)
	fmt.Printf("%x\n", c.Fingerprint[:8])
	fmt.Println(c.PoP) // a PoP never prints

	_, err = enroll.ParseCode("mqttsec-enroll:2:door-7:BaPRDxFRzBw-vigIsfa7NZJv44sYu5yet8wed8U18h8:tTb4bK-l4XIF3Dua7vE6yA")
	fmt.Println(err)
	// Output:
	// site:door:7
	// 05a3d10f1151cc1c
	// PoP(redacted)
	// enroll: malformed: code of another version than 1
}
