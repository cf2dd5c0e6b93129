package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
)

// expectedImages returns the expected-image lists: the built-in ones, or
// those of --expected-file.
func expectedImages(path string) (fedfind.ExpectedImages, error) {
	if path == "" {
		return fedfind.DefaultExpectedImages(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, withCode(exitError, fmt.Errorf("--expected-file: %w", err))
	}
	defer f.Close()
	e, err := fedfind.ParseExpectedImages(f, path)
	if err != nil {
		return nil, withCode(exitError, fmt.Errorf("--expected-file: %w", err))
	}
	return e, nil
}

func newExpectedCmd(a *app) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "expected COMPOSE",
		Short: "List the expected images a compose is missing",
		Long: `List the images a compose of its release stream must have but lacks.

Each stream expects a list of (subvariant, type, arch); an image matches when
its subvariant (lower-cased, minus a trailing "_appliance"), type and arch are
equal, as fedfind matches them. The lists are built in (see
'fedfind/expected.toml' in the source) and can be replaced with
--expected-file FILE of the same shape.

Each missing image is named as 'images' and 'diff' name images: its arch and
identity (<subvariant>-<type>-<format>; the format and the spelling of the
subvariant are those of the compose's image on another arch, if it has one).
--json prints the missing images as [{"identity","arch","subvariant","type"}...],
subvariant and type as the list spells them.

Exit codes: 0 nothing missing, 1 images missing, 2 error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exp, err := expectedImages(file)
			if err != nil {
				return err
			}
			cm, images, err := a.loadImages(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			want := exp[cm.Stream.Kind]
			missing := fedfind.MissingExpected(want, images)
			if a.g.json {
				if err := a.printJSON(missingJSON(missing, images)); err != nil {
					return err
				}
			} else {
				switch {
				case len(want) == 0:
					fmt.Fprintf(a.stdout, "%s: the %s stream expects no images.\n", cm.ID, cm.Stream.Kind)
				case len(missing) == 0:
					fmt.Fprintf(a.stdout, "%s: %s.\n", cm.ID, allPresent(len(want)))
				default:
					fmt.Fprintf(a.stdout, "%s: %d of %d expected images missing:\n", cm.ID, len(missing), len(want))
					for _, m := range missing {
						fmt.Fprintf(a.stdout, "  %-8s %s\n", m.Arch, m.Identity(images))
					}
				}
			}
			if len(missing) > 0 {
				return negative()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "expected-file", "", "TOML file replacing the built-in expected-image lists")
	return cmd
}

// missingImage is one entry of `expected --json`: named as `diff --json`
// names images, by identity and arch, with the list's own terms.
type missingImage struct {
	Identity   string `json:"identity"`
	Arch       string `json:"arch"`
	Subvariant string `json:"subvariant"`
	Type       string `json:"type"`
}

func missingJSON(missing []fedfind.ExpectedImage, images []fedfind.Image) []missingImage {
	out := make([]missingImage, 0, len(missing))
	for _, m := range missing {
		out = append(out, missingImage{Identity: m.Identity(images), Arch: m.Arch, Subvariant: m.Subvariant, Type: m.Type})
	}
	return out
}

// allPresent says that all n expected images are there.
func allPresent(n int) string {
	if n == 1 {
		return "the 1 expected image is present"
	}
	return fmt.Sprintf("all %d expected images are present", n)
}
