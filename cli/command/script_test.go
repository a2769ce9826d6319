package command

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the amesh command inside scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"amesh": func() { os.Exit(Main(os.Args[1:], StdIO())) },
	})
}

// TestScripts runs the txtar scripts in testdata/script: one or more per
// command, with every error path.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("AUTH_MESH_DIR", env.WorkDir+"/amesh")
			env.Setenv("HOME", env.WorkDir+"/home")
			env.Setenv("NO_COLOR", "")
			return nil
		},
	})
}
