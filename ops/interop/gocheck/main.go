// Command gocheck verifies checkpoints and proofs made by the Python ledger with the Go
// team's own code: golang.org/x/mod/sumdb/note (signed notes) and sumdb/tlog (RFC 6962
// proofs). It reads a JSON file of cases and prints one line per case, "OK <name>" or
// "FAIL <name>: <reason>", then exits 0. It exits 2 if the case file itself is unusable.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusionCase struct {
	LeafHex string `json:"leaf_hex"`
	Proof   struct {
		LeafIndex int64    `json:"leaf_index"`
		AuditPath []string `json:"audit_path"`
	} `json:"proof"`
}

type consistencyCase struct {
	OldNote string `json:"old_note"`
	Proof   struct {
		Consistency []string `json:"consistency"`
	} `json:"proof"`
}

type testCase struct {
	Name        string           `json:"name"`
	VKey        string           `json:"vkey"`
	Note        string           `json:"note"`
	Inclusion   *inclusionCase   `json:"inclusion"`
	Consistency *consistencyCase `json:"consistency"`
}

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "tiles" {
		os.Exit(tilesMain(os.Args[2:]))
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gocheck CASES.json | gocheck tiles DIR VKEY INDEXES SIZES")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gocheck:", err)
		os.Exit(2)
	}
	var cases []testCase
	if err := json.Unmarshal(data, &cases); err != nil {
		fmt.Fprintln(os.Stderr, "gocheck: bad case file:", err)
		os.Exit(2)
	}
	for _, c := range cases {
		if err := check(c); err != nil {
			fmt.Printf("FAIL %s: %v\n", c.Name, err)
		} else {
			fmt.Printf("OK %s\n", c.Name)
		}
	}
}

func check(c testCase) error {
	verifier, err := note.NewVerifier(c.VKey)
	if err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	tree, err := openCheckpoint(c.Note, verifier)
	if err != nil {
		return err
	}
	if c.Inclusion != nil {
		if err := checkInclusion(c.Inclusion, tree); err != nil {
			return err
		}
	}
	if c.Consistency != nil {
		if err := checkConsistency(c.Consistency, tree, verifier); err != nil {
			return err
		}
	}
	return nil
}

// openCheckpoint verifies the note's signature with note.Open and parses the C2SP checkpoint
// body. tlog.ParseTree only accepts the "go.sum database tree" origin, so the body is parsed
// here with the same rules: origin, canonical decimal size, base64 32-byte root.
func openCheckpoint(text string, verifier note.Verifier) (checkpoint, error) {
	n, err := note.Open([]byte(text), note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, fmt.Errorf("note.Open: %w", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return checkpoint{}, errors.New("checkpoint body has fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || lines[1] != strconv.FormatInt(size, 10) {
		return checkpoint{}, fmt.Errorf("bad checkpoint size %q", lines[1])
	}
	root, err := decodeHash(lines[2])
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint root: %w", err)
	}
	return checkpoint{origin: lines[0], size: size, root: root}, nil
}

func decodeHash(text string) (tlog.Hash, error) {
	var h tlog.Hash
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return h, err
	}
	if len(raw) != tlog.HashSize {
		return h, fmt.Errorf("hash is %d bytes, want %d", len(raw), tlog.HashSize)
	}
	copy(h[:], raw)
	return h, nil
}

func decodeHashes(texts []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(texts))
	for _, t := range texts {
		h, err := decodeHash(t)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func checkInclusion(c *inclusionCase, tree checkpoint) error {
	leaf, err := hex.DecodeString(c.LeafHex)
	if err != nil {
		return fmt.Errorf("leaf_hex: %w", err)
	}
	path, err := decodeHashes(c.Proof.AuditPath)
	if err != nil {
		return fmt.Errorf("audit_path: %w", err)
	}
	if err := tlog.CheckRecord(path, tree.size, tree.root, c.Proof.LeafIndex, tlog.RecordHash(leaf)); err != nil {
		return fmt.Errorf("tlog.CheckRecord: %w", err)
	}
	return nil
}

func checkConsistency(c *consistencyCase, tree checkpoint, verifier note.Verifier) error {
	old, err := openCheckpoint(c.OldNote, verifier)
	if err != nil {
		return fmt.Errorf("old checkpoint: %w", err)
	}
	if old.origin != tree.origin {
		return fmt.Errorf("old checkpoint origin %q differs from %q", old.origin, tree.origin)
	}
	path, err := decodeHashes(c.Proof.Consistency)
	if err != nil {
		return fmt.Errorf("consistency: %w", err)
	}
	if err := tlog.CheckTree(path, tree.size, tree.root, old.size, old.root); err != nil {
		return fmt.Errorf("tlog.CheckTree: %w", err)
	}
	return nil
}
