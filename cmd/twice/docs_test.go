package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/twicehq/twice/twicetype"
)

// The user documentation is README.md and docs/. These tests keep it
// standing alone and in step with the program: no reference to a contract
// users never see, no link to a file or anchor that does not exist, every
// flag of --help documented in docs/cli.md, every detector in
// docs/detectors.md.

// repoRoot is the repository, seen from this package's folder (go test
// runs in it).
const repoRoot = "../.."

// userDocs returns README.md and every Markdown file under docs/, as
// paths relative to repoRoot with forward slashes.
func userDocs(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing docs/: %v", err)
	}
	if len(files) < 2 {
		t.Fatalf("no Markdown files under docs/")
	}
	return files
}

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// specRef matches a reference to the contract's sections ("spec §2",
// "(§4)"): users have no spec, so docs and help point into docs/ instead.
var specRef = regexp.MustCompile(`(?i)\bspec\w*\s*§|§\s*\d`)

// lineOf returns the 1-based line of byte offset i in s.
func lineOf(s string, i int) int { return strings.Count(s[:i], "\n") + 1 }

func TestDocsDoNotCiteTheSpec(t *testing.T) {
	for _, rel := range userDocs(t) {
		doc := readDoc(t, rel)
		for _, m := range specRef.FindAllStringIndex(doc, -1) {
			t.Errorf("%s:%d: %q cites the spec, which users never see; link to docs/ instead",
				rel, lineOf(doc, m[0]), doc[m[0]:m[1]])
		}
	}
	for _, cmd := range append([][]string{{"--help"}}, helpCommands(t)...) {
		out := help(t, cmd...)
		if m := specRef.FindString(out); m != "" {
			t.Errorf("twice %s: help cites the spec (%q), which users never see", strings.Join(cmd, " "), m)
		}
	}
}

var (
	fence       = regexp.MustCompile("(?ms)^[ \t]*(```|~~~).*?^[ \t]*(```|~~~)[ \t]*$")
	comment     = regexp.MustCompile(`(?s)<!--.*?-->`)
	codeSpan    = regexp.MustCompile("`[^`\n]*`")
	inlineLink  = regexp.MustCompile(`\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink     = regexp.MustCompile(`(?m)^[ \t]*\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+"[^"]*")?[ \t]*$`)
	heading     = regexp.MustCompile(`(?m)^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$`)
	htmlAnchor  = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	linkText    = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	urlScheme   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	blankFences = func(s string) string {
		// Keep line numbers: replace each block by as many newlines.
		return fence.ReplaceAllStringFunc(s, func(b string) string { return strings.Repeat("\n", strings.Count(b, "\n")) })
	}
)

// prose returns the text of a Markdown file where links can be: code
// blocks, code spans and comments blanked out, line numbers kept.
func prose(doc string) string {
	doc = blankFences(doc)
	doc = comment.ReplaceAllStringFunc(doc, func(c string) string { return strings.Repeat("\n", strings.Count(c, "\n")) })
	return codeSpan.ReplaceAllString(doc, "")
}

// anchors returns the fragment ids a Markdown file defines: GitHub's ids
// for its headings (lowercased, punctuation dropped, spaces to hyphens,
// -1, -2… for repeats) and explicit <a id> / <a name> anchors.
func anchors(doc string) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(blankFences(doc), -1) {
		text := linkText.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			ids[fmt.Sprintf("%s-%d", id, n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	for _, m := range htmlAnchor.FindAllStringSubmatch(doc, -1) {
		ids[m[1]] = true
	}
	return ids
}

func TestDocsLinksResolve(t *testing.T) {
	anchorCache := map[string]map[string]bool{}
	anchorsOf := func(rel string) map[string]bool {
		if a, ok := anchorCache[rel]; ok {
			return a
		}
		a := anchors(readDoc(t, rel))
		anchorCache[rel] = a
		return a
	}
	checked := 0
	for _, rel := range userDocs(t) {
		text := prose(readDoc(t, rel))
		var targets [][]int
		for _, re := range []*regexp.Regexp{inlineLink, refLink} {
			targets = append(targets, re.FindAllStringSubmatchIndex(text, -1)...)
		}
		for _, m := range targets {
			target := text[m[2]:m[3]]
			where := fmt.Sprintf("%s:%d", rel, lineOf(text, m[0]))
			if urlScheme.MatchString(target) {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(target, "#")
			dest := rel
			if path != "" {
				dest = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(rel), filepath.FromSlash(path))))
				if strings.HasPrefix(dest, "../") {
					t.Errorf("%s: link %q leaves the repository", where, target)
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(dest))); err != nil {
					t.Errorf("%s: link %q: %s does not exist", where, target, dest)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %q: an anchor into %s, which is not Markdown", where, target, dest)
				continue
			}
			if !anchorsOf(dest)[frag] {
				t.Errorf("%s: link %q: %s has no heading or anchor %q", where, target, dest, frag)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found in README.md and docs/: is the link pattern broken?", checked)
	}
}

// TestAnchorsFollowGitHub pins the heading ids the link check assumes.
func TestAnchorsFollowGitHub(t *testing.T) {
	doc := "# The sidecar (`twice watch`)\n## Idempotence: dedup on read\n## `max_per_key`\n" +
		"```\n# not a heading\n```\n## Notes\n## Notes\n<a id=\"custom\"></a>\n## [Linked](x.md) heading\n"
	got := anchors(doc)
	for _, id := range []string{"the-sidecar-twice-watch", "idempotence-dedup-on-read", "max_per_key", "notes", "notes-1", "custom", "linked-heading"} {
		if !got[id] {
			t.Errorf("no anchor %q in %v", id, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("a line in a code block was taken for a heading")
	}
}

// help runs `twice ARGS... --help` and returns what it printed.
func help(t *testing.T, args ...string) string {
	t.Helper()
	if len(args) == 0 || args[len(args)-1] != "--help" {
		args = append(slices.Clone(args), "--help")
	}
	out, errOut, code := runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("twice %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// helpCommands lists the commands `twice --help` names, each as the args
// that run its help; cobra's own help and completion commands are left
// out.
func helpCommands(t *testing.T) [][]string {
	t.Helper()
	out := help(t)
	_, list, ok := strings.Cut(out, "Available Commands:\n")
	if !ok {
		t.Fatalf("twice --help lists no commands:\n%s", out)
	}
	list, _, _ = strings.Cut(list, "\n\n")
	var cmds [][]string
	for _, line := range strings.Split(list, "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if name == "" || name == "help" || name == "completion" {
			continue
		}
		cmds = append(cmds, []string{name, "--help"})
	}
	return cmds
}

// flagLine matches a flag in cobra's help: "  -c, --config string  ...".
var flagLine = regexp.MustCompile(`(?m)^\s+(?:-(\w), )?--([\w-]+)`)

// helpFlags returns the flags a help text lists, as "--name" or
// "-x, --name" when it has a shorthand.
func helpFlags(out string) []string {
	var flags []string
	for _, sect := range []string{"\nFlags:\n", "\nGlobal Flags:\n"} {
		_, rest, ok := strings.Cut(out, sect)
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, "\n\n")
		for _, m := range flagLine.FindAllStringSubmatch(rest, -1) {
			if m[1] != "" {
				flags = append(flags, "-"+m[1]+", --"+m[2])
			} else {
				flags = append(flags, "--"+m[2])
			}
		}
	}
	return flags
}

// section returns the part of doc under the heading that is exactly
// title, up to the next heading of the same or a higher level.
func section(doc, title string) (string, bool) {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		level := len(l) - len(strings.TrimLeft(l, "#"))
		if level == 0 || strings.TrimSpace(l[level:]) != title {
			continue
		}
		end := len(lines)
		for k := i + 1; k < len(lines); k++ {
			if lv := len(lines[k]) - len(strings.TrimLeft(lines[k], "#")); lv > 0 && lv <= level && strings.HasPrefix(lines[k][lv:], " ") {
				end = k
				break
			}
		}
		return strings.Join(lines[i:end], "\n"), true
	}
	return "", false
}

// TestCLIDocMatchesHelp fails when --help shows a flag (or a command) that
// docs/cli.md does not document: each command's flags must appear, with
// their shorthand, in the section "## `twice NAME`".
func TestCLIDocMatchesHelp(t *testing.T) {
	// A TODO note in a comment is not documentation.
	doc := comment.ReplaceAllString(readDoc(t, "docs/cli.md"), "")
	for _, f := range helpFlags(help(t)) {
		if !strings.Contains(doc, f) {
			t.Errorf("twice --help shows %s, but docs/cli.md does not mention it", f)
		}
	}
	cmds := helpCommands(t)
	for _, want := range []string{"audit", "watch"} {
		if !slices.ContainsFunc(cmds, func(c []string) bool { return c[0] == want }) {
			t.Errorf("twice --help does not list %s", want)
		}
	}
	for _, cmd := range cmds {
		title := "`twice " + cmd[0] + "`"
		sect, ok := section(doc, title)
		if !ok {
			t.Errorf("twice %s is a command, but docs/cli.md has no section %q", cmd[0], "## "+title)
			continue
		}
		flags := helpFlags(help(t, cmd...))
		for _, f := range flags {
			if !strings.Contains(sect, f) {
				t.Errorf("twice %s --help shows %s, but the section %s of docs/cli.md does not mention it", cmd[0], f, title)
			}
		}
		if cmd[0] == "audit" && len(flags) < 10 {
			t.Errorf("found only %d flags in twice audit --help (%v): is the pattern broken?", len(flags), flags)
		}
	}
}

// TestDetectorsDocumented fails when a detector has no section in
// docs/detectors.md or no entry in docs/configuration.md.
func TestDetectorsDocumented(t *testing.T) {
	det := anchors(readDoc(t, "docs/detectors.md"))
	cfg := readDoc(t, "docs/configuration.md")
	for _, id := range twicetype.DetectorIDs {
		if !det[id] {
			t.Errorf("docs/detectors.md has no section for %s", id)
		}
		if !strings.Contains(cfg, "`"+id+"`") {
			t.Errorf("docs/configuration.md does not mention the detector %s", id)
		}
	}
}

// TestReadmeStartsWithFirstSteps keeps the README's first two commands
// first: the audit of the bundled demo, then the whole suite.
func TestReadmeStartsWithFirstSteps(t *testing.T) {
	readme := readDoc(t, "README.md")
	m := fence.FindStringIndex(readme)
	if m == nil {
		t.Fatal("README.md has no code block")
	}
	lines := strings.Split(strings.TrimSpace(readme[m[0]:m[1]]), "\n")
	want := []string{
		"go run ./cmd/twice audit --config testdata/demo/twice.yaml testdata/demo/events.jsonl",
		"scripts/test",
	}
	if len(lines) < 2+len(want) {
		t.Fatalf("README.md's first code block is too short:\n%s", strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if got := strings.TrimSpace(lines[1+i]); !strings.HasPrefix(got, w+" ") && got != w {
			t.Errorf("README.md's first code block, command %d: got %q, want %q first", i+1, got, w)
		}
	}
	// The first command runs as written, from the repository root, and
	// exits 1 as its comment says: the demo has findings.
	cmd, comment, _ := strings.Cut(lines[1], "#")
	args := strings.Fields(cmd)[3:] // after "go run ./cmd/twice"
	for i, a := range args {
		if strings.Contains(a, "/") {
			args[i] = filepath.Join(repoRoot, a)
		}
	}
	if !strings.Contains(comment, "exit 1") {
		t.Errorf("README.md's first command no longer says what it exits with: %q", comment)
	}
	if _, errOut, code := runCLI(t, args...); code != exitFindings {
		t.Errorf("README.md's first command: exit %d, want %d\n%s", code, exitFindings, errOut)
	}
}
