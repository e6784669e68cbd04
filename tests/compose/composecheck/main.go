// Command composecheck loads a compose file with compose-go, the loader Docker Compose itself is
// built on, so that docker-compose.yml is checked on machines without a Docker engine: schema
// validation, interpolation, normalisation and the consistency checks (depends_on targets,
// volumes, networks) are the ones `docker compose config` runs. On success it prints the
// normalised model as JSON; on any error it prints the loader's message and exits 1.
//
// Usage: composecheck [-profiles p1,p2] path/to/docker-compose.yml
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	// Every profile by default: a service behind a profile (the replay producer) must be
	// checked too, and the normalised model must show it.
	profiles := flag.String("profiles", "*", "comma-separated profiles to enable (*: all)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: composecheck [-profiles p1,p2] COMPOSE_FILE")
		os.Exit(2)
	}
	if err := check(flag.Arg(0), strings.Split(*profiles, ","), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// check loads path the way `docker compose -f path config` does (the process environment and a
// .env file beside it feed the interpolation) and writes the normalised model to out.
func check(path string, profiles []string, out io.Writer) error {
	options, err := cli.NewProjectOptions(
		[]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)),
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	model, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = out.Write(append(model, '\n'))
	return err
}
