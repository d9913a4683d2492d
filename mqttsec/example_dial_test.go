package mqttsec_test

import (
	"errors"
	"fmt"

	"github.com/mqttsec/mqttsec/mqttsec"
)

// The broker addresses NewTransport takes, for MQTT 5 and 3.1.1 alike.
// Credentials never go in the URL, where process lists and logs would
// show the password: TransportOptions has Username and Password for them.
func ExampleParseBrokerURL() {
	for _, s := range []string{
		"broker.example:1883",
		":1883",
		"mqtts://broker.example",
		"wss://broker.example/mqtt",
		"unix:///run/mosquitto/mqtt.sock",
	} {
		u, err := mqttsec.ParseBrokerURL(s)
		fmt.Println(u, err)
	}
	_, err := mqttsec.ParseBrokerURL("tcp://door-7:s3cret@broker.example")
	fmt.Println(errors.Is(err, mqttsec.ErrCredentialsInURL))
	_, err = mqttsec.ParseBrokerURL("http://broker.example")
	fmt.Println(err)
	// Output:
	// tcp://broker.example:1883 <nil>
	// tcp://127.0.0.1:1883 <nil>
	// mqtts://broker.example:8883 <nil>
	// wss://broker.example/mqtt <nil>
	// unix:///run/mosquitto/mqtt.sock <nil>
	// true
	// mqttsec: invalid configuration: broker URL "http://broker.example": unknown scheme "http"; the accepted ones are tcp://, mqtt://, ssl://, tls://, mqtts://, mqtt+ssl://, tcps://, ws://, wss://, unix:// (or host:port alone for tcp://)
}
