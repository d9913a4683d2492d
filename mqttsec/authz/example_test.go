package authz_test

import (
	"fmt"
	"strings"

	"github.com/mqttsec/mqttsec/mqttsec/authz"
)

// Rules are two texts: callers to groups, and groups to the method patterns
// they are granted ('!' denies, and a deny always wins). Servers take
// Allowed as ServerConfig.Authorize; authz.Load reads the same from files
// and can Watch them.
func ExampleParse() {
	users := `
door-controller-7   doors
ops-console         operators
`
	groups := `
doors       doors/*, get-card
operators   *, !admin/*
`
	rules, err := authz.Parse("users", strings.NewReader(users), "groups", strings.NewReader(groups))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []struct{ caller, method string }{
		{"door-controller-7", "doors/open"},
		{"door-controller-7", "admin/reset"},
		{"ops-console", "doors/open"},
		{"ops-console", "admin/reset"},
		{"someone-else", "get-card"},
	} {
		fmt.Println(c.caller, c.method, rules.Allowed(c.caller, c.method))
	}
	// Output:
	// door-controller-7 doors/open true
	// door-controller-7 admin/reset false
	// ops-console doors/open true
	// ops-console admin/reset false
	// someone-else get-card false
}

// A syntax error names the file and the line, and refuses the whole file.
func ExampleParse_syntaxError() {
	_, err := authz.Parse("users", strings.NewReader("ops-console\n"), "groups", strings.NewReader(""))
	fmt.Println(err != nil, strings.HasPrefix(err.Error(), "users:1:"))
	// Output:
	// true true
}
