package internal

import (
	"bufio"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The groups of the module's directories that the import rules of package
// internal tell apart.
type group int

const (
	groupProduct   group = iota // the node and everything it is built from
	groupPrimitive              // internal/<name>, outside harness/ and testkit/
	groupHarness                // internal/harness/...
	groupTestkit                // internal/testkit/...
	groupCmd                    // cmd/...
	groupSuite                  // test/...
)

// classify sorts a slash-separated directory, relative to the module root,
// into its group.
func classify(dir string) group {
	under := func(prefix string) bool { return dir == prefix || strings.HasPrefix(dir, prefix+"/") }
	switch {
	case under("internal/harness"):
		return groupHarness
	case under("internal/testkit"):
		return groupTestkit
	case strings.HasPrefix(dir, "internal/"):
		return groupPrimitive
	case under("cmd"):
		return groupCmd
	case under("test"):
		return groupSuite
	}
	return groupProduct
}

// violation is one import that breaks a rule.
type violation struct {
	File   string // slash-separated, relative to the module root
	Import string
	Rule   string
}

func (v violation) String() string {
	return fmt.Sprintf("%s imports %s: %s", v.File, v.Import, v.Rule)
}

const (
	ruleHarness   = "only cmd/, test/ and other harnesses may import internal/harness/..."
	ruleTestkit   = "only _test.go files, test/, the harnesses and the test kit may import internal/testkit/..."
	rulePrimitive = "a primitive directly under internal/ imports only the standard library, other modules and other primitives"
)

// checkImports returns the violations of one file's import of a package of
// the module (rel is the imported package's directory relative to the
// module root; "" for the root package).
func checkImports(file string, test bool, rel string) []string {
	from := classify(filepath.ToSlash(filepath.Dir(file)))
	to := classify(rel)
	var broken []string
	switch to {
	case groupHarness:
		if from != groupHarness && from != groupCmd && from != groupSuite {
			broken = append(broken, ruleHarness)
		}
	case groupTestkit:
		if !test && from != groupTestkit && from != groupHarness && from != groupSuite {
			broken = append(broken, ruleTestkit)
		}
	}
	if from == groupPrimitive && !test && to != groupPrimitive {
		broken = append(broken, rulePrimitive)
	}
	return broken
}

// checkLayers parses the imports of every .go file of the module rooted at
// root (build tags do not matter; testdata, vendor, directories whose name
// starts with "." or "_" and nested modules are skipped, as the go command
// skips them) and returns every import that breaks the rules of package
// internal, and the files it read.
func checkLayers(root string) (found []violation, files []string, err error) {
	module, err := modulePath(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, nil, err
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == root {
				return nil
			}
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || !d.Type().IsRegular() {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return fmt.Errorf("parse imports: %w", err)
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		files = append(files, rel)
		test := strings.HasSuffix(rel, "_test.go")
		for _, spec := range f.Imports {
			imp, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: import %s: %w", rel, spec.Path.Value, err)
			}
			var pkg string
			switch {
			case imp == module:
				pkg = ""
			case strings.HasPrefix(imp, module+"/"):
				pkg = strings.TrimPrefix(imp, module+"/")
			default:
				// The standard library or another module: only a
				// primitive's own rule can concern it, and it allows both.
				continue
			}
			for _, rule := range checkImports(rel, test, pkg) {
				found = append(found, violation{File: rel, Import: imp, Rule: rule})
			}
		}
		return nil
	})
	return found, files, err
}

// modulePath reads the module path from a go.mod file.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			path := strings.TrimSpace(rest)
			if i := strings.Index(path, "//"); i >= 0 {
				path = strings.TrimSpace(path[:i])
			}
			if unq, err := strconv.Unquote(path); err == nil {
				path = unq
			}
			if path == "" {
				break
			}
			return path, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	return "", errors.New(gomod + ": no module line")
}

// TestModuleKeepsLayers checks the rules of package internal on this
// module: no package below the harnesses imports one, no code a node runs
// imports the test kit, and the primitives import no ledgerd package.
func TestModuleKeepsLayers(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	found, files, err := checkLayers(root)
	if err != nil {
		t.Fatal(err)
	}
	// A walk that missed the module would pass vacuously: it must have
	// read this file and the harnesses.
	for _, want := range []string{"internal/layers_test.go", "internal/harness/localnet/localnet.go"} {
		if !slices.Contains(files, want) {
			t.Errorf("the check did not read %s (%d files read)", want, len(files))
		}
	}
	for _, v := range found {
		t.Errorf("%v (see go doc ./internal)", v)
	}
}

// TestCheckLayersFindsEachViolation runs the check on small synthetic
// modules, one allowed or forbidden import at a time, so the check is known
// to fail on what it must refuse and to pass what the rules allow.
func TestCheckLayersFindsEachViolation(t *testing.T) {
	const mod = "example.com/m"
	imp := func(pkgs ...string) string {
		var b strings.Builder
		b.WriteString("package p\n\nimport (\n")
		for _, p := range pkgs {
			fmt.Fprintf(&b, "\t_ %q\n", p)
		}
		b.WriteString(")\n")
		return b.String()
	}
	harness := mod + "/internal/harness/bench"
	testkit := mod + "/internal/testkit/testseed"
	durable := mod + "/internal/durable"
	tests := []struct {
		name string
		file string // relative path of the one file besides go.mod
		body string
		want []string // rules broken, in order; nil when allowed
	}{
		{"product imports a primitive", "node/node.go", imp(durable, "fmt", "github.com/other/lib"), nil},
		{"product imports a harness", "node/node.go", imp(harness), []string{ruleHarness}},
		{"product test imports a harness", "node/node_test.go", imp(mod + "/internal/harness/localnet"), []string{ruleHarness}},
		{"root package imports a harness", "root.go", imp(harness), []string{ruleHarness}},
		{"cmd imports a harness", "cmd/ledgerd/bench.go", imp(harness), nil},
		{"suite imports a harness and the test kit", "test/e2e/main_test.go", imp(harness, testkit), nil},
		{"suite non-test file imports the test kit", "test/e2e/helpers.go", imp(testkit), nil},
		{"harness imports another harness and the test kit", "internal/harness/adversary/run.go", imp(harness, testkit), nil},
		{"product imports the test kit", "ledger/fixture.go", imp(testkit), []string{ruleTestkit}},
		{"product test imports the test kit", "ledger/fixture_test.go", imp(testkit), nil},
		{"cmd imports the test kit", "cmd/ledgerd/main.go", imp(testkit), []string{ruleTestkit}},
		{"cmd test imports the test kit", "cmd/ledgerd/main_test.go", imp(testkit), nil},
		{"test kit imports the test kit", "internal/testkit/netports/netports.go", imp(testkit), nil},
		{"test kit imports a harness", "internal/testkit/netports/netports.go", imp(harness), []string{ruleHarness}},
		{"primitive imports a primitive", "internal/durable/durable.go", imp(mod+"/internal/fsname", "os"), nil},
		{"primitive imports a product package", "internal/durable/durable.go", imp(mod + "/ledger"), []string{rulePrimitive}},
		{"primitive imports the root package", "internal/durable/durable.go", imp(mod), []string{rulePrimitive}},
		{"primitive imports the test kit", "internal/durable/durable.go", imp(testkit), []string{ruleTestkit, rulePrimitive}},
		{"primitive test imports the test kit", "internal/durable/durable_test.go", imp(testkit), nil},
		{"primitive imports a harness", "internal/durable/durable.go", imp(harness), []string{ruleHarness, rulePrimitive}},
		{"file for another platform", "node/netns_other.go", "//go:build !linux\n\n" + imp(harness), []string{ruleHarness}},
		{"testdata is skipped", "node/testdata/x.go", imp(harness), nil},
		{"dot directory is skipped", "node/.cache/x.go", imp(harness), nil},
		{"nested module is skipped", "tools/lint/x.go", imp(harness), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, "go.mod", "module "+mod+"\n\ngo 1.22\n")
			if strings.HasPrefix(tc.file, "tools/lint/") {
				write(t, root, "tools/lint/go.mod", "module example.com/lint\n")
			}
			write(t, root, tc.file, tc.body)
			found, _, err := checkLayers(root)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range found {
				if v.File != tc.file {
					t.Errorf("violation reported in %s, want %s: %v", v.File, tc.file, v)
				}
				got = append(got, v.Rule)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rules broken = %q, want %q (found %v)", got, tc.want, found)
			}
		})
	}
}

// TestCheckLayersRefusesBadInput: a file that does not parse or a module
// without a go.mod is an error, not a pass.
func TestCheckLayersRefusesBadInput(t *testing.T) {
	t.Run("unparsable file", func(t *testing.T) {
		root := t.TempDir()
		write(t, root, "go.mod", "module example.com/m\n")
		write(t, root, "node/bad.go", "package node\n\nimport (\n")
		if _, _, err := checkLayers(root); err == nil {
			t.Fatal("checkLayers accepted a file that does not parse")
		}
	})
	t.Run("no go.mod", func(t *testing.T) {
		if _, _, err := checkLayers(t.TempDir()); err == nil {
			t.Fatal("checkLayers accepted a directory without go.mod")
		}
	})
	t.Run("go.mod without a module line", func(t *testing.T) {
		root := t.TempDir()
		write(t, root, "go.mod", "go 1.22\n")
		if _, _, err := checkLayers(root); err == nil {
			t.Fatal("checkLayers accepted a go.mod without a module line")
		}
	})
}

func TestModulePath(t *testing.T) {
	for _, tc := range []struct{ gomod, want string }{
		{"module example.com/m\n", "example.com/m"},
		{"// comment\nmodule\texample.com/m // trailing\n\ngo 1.22\n", "example.com/m"},
		{"module \"example.com/quoted\"\n", "example.com/quoted"},
		{"modules example.com/m\nmodule example.com/n\n", "example.com/n"},
	} {
		dir := t.TempDir()
		write(t, dir, "go.mod", tc.gomod)
		got, err := modulePath(filepath.Join(dir, "go.mod"))
		if err != nil || got != tc.want {
			t.Errorf("modulePath(%q) = %q, %v; want %q", tc.gomod, got, err, tc.want)
		}
	}
}

func write(t *testing.T, root, rel, body string) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
