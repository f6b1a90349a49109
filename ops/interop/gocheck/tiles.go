package main

// The "tiles" mode reads a C2SP tlog-tiles directory (https://c2sp.org/tlog-tiles) written by the
// ledger through Go's own tile code: tlog.TileHashReader over a TileReader that maps sumdb's
// tile/8/L/N[.p/W] paths to C2SP's tile/L/N[.p/W] (and tile/8/data/N to tile/entries/N).
//
//	gocheck tiles DIR VKEY INDEXES SIZES
//
// verifies DIR/checkpoint with note.Open, authenticates every tile it reads against the
// checkpoint's root (TileHashReader does), and prints:
//
//	size <N>
//	root <base64 TreeHash>
//	record <i> <base64 hashes of ProveRecord(N, i), comma-separated>   for each i of INDEXES
//	tree <m> <base64 hashes of ProveTree(N, m), comma-separated>       for each m of SIZES
//	entries <count>                 every entry bundle parsed and each entry's RecordHash checked
//	paths <count>                   every file under DIR/tile round-trips through tlog.ParseTilePath
//
// or "FAIL <what>: <reason>" for the first check that fails; it always exits 0 after printing,
// and 2 when the arguments are unusable. INDEXES and SIZES are comma-separated (may be empty).

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8

type dirTiles struct {
	dir   string
	cache map[tlog.Tile][]byte
}

// c2spPath maps sumdb's tile/8/L/N[.p/W] (and tile/8/data/N) to C2SP's tile/L/N (tile/entries/N).
func c2spPath(t tlog.Tile) string {
	p := t.Path()
	prefix := fmt.Sprintf("tile/%d/", tileHeight)
	rest := strings.TrimPrefix(p, prefix)
	if strings.HasPrefix(rest, "data/") {
		return "tile/entries/" + strings.TrimPrefix(rest, "data/")
	}
	return "tile/" + rest
}

func (d *dirTiles) Height() int { return tileHeight }

func (d *dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if data, ok := d.cache[t]; ok {
			out[i] = data
			continue
		}
		data, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(c2spPath(t))))
		if err != nil {
			return nil, err
		}
		d.cache[t] = data
		out[i] = data
	}
	return out, nil
}

func (d *dirTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func parseList(text string) ([]int64, error) {
	var out []int64
	if text == "" {
		return out, nil
	}
	for _, part := range strings.Split(text, ",") {
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func joinHashes(hashes []tlog.Hash) string {
	parts := make([]string, len(hashes))
	for i, h := range hashes {
		parts[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return strings.Join(parts, ",")
}

func tilesMain(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gocheck tiles DIR VKEY INDEXES SIZES")
		return 2
	}
	dir, vkey := args[0], args[1]
	indexes, err1 := parseList(args[2])
	sizes, err2 := parseList(args[3])
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "gocheck: INDEXES and SIZES are comma-separated integers")
		return 2
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gocheck: verifier key:", err)
		return 2
	}
	if err := checkTiles(dir, verifier, indexes, sizes); err != nil {
		fmt.Printf("FAIL %v\n", err)
	}
	return 0
}

func checkTiles(dir string, verifier note.Verifier, indexes, sizes []int64) error {
	text, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	cp, err := openCheckpoint(string(text), verifier)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	fmt.Printf("size %d\n", cp.size)
	reader := &dirTiles{dir: dir, cache: map[tlog.Tile][]byte{}}
	hr := tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, reader)
	root, err := tlog.TreeHash(cp.size, hr)
	if err != nil {
		return fmt.Errorf("root: tlog.TreeHash: %w", err)
	}
	fmt.Printf("root %s\n", base64.StdEncoding.EncodeToString(root[:]))
	for _, i := range indexes {
		proof, err := tlog.ProveRecord(cp.size, i, hr)
		if err != nil {
			return fmt.Errorf("record %d: tlog.ProveRecord: %w", i, err)
		}
		fmt.Printf("record %d %s\n", i, joinHashes(proof))
	}
	for _, m := range sizes {
		proof, err := tlog.ProveTree(cp.size, m, hr)
		if err != nil {
			return fmt.Errorf("tree %d: tlog.ProveTree: %w", m, err)
		}
		fmt.Printf("tree %d %s\n", m, joinHashes(proof))
	}
	count, err := checkEntries(reader, hr, cp.size)
	if err != nil {
		return fmt.Errorf("entries: %w", err)
	}
	fmt.Printf("entries %d\n", count)
	paths, err := checkPaths(dir)
	if err != nil {
		return fmt.Errorf("paths: %w", err)
	}
	fmt.Printf("paths %d\n", paths)
	return nil
}

// checkEntries reads every entry bundle of the tree (tlog data tiles, level -1) and checks that
// each entry's RecordHash is the authenticated level-0 hash at its index.
func checkEntries(reader *dirTiles, hr tlog.HashReader, size int64) (int64, error) {
	var count int64
	for n := int64(0); n*256 < size; n++ {
		width := size - n*256
		if width > 256 {
			width = 256
		}
		tile := tlog.Tile{H: tileHeight, L: -1, N: n, W: int(width)}
		data, err := reader.ReadTiles([]tlog.Tile{tile})
		if err != nil {
			return count, err
		}
		raw := data[0]
		need := make([]int64, width)
		for k := range need {
			need[k] = tlog.StoredHashIndex(0, n*256+int64(k))
		}
		leafHashes, err := hr.ReadHashes(need)
		if err != nil {
			return count, err
		}
		for k := int64(0); k < width; k++ {
			if len(raw) < 2 {
				return count, fmt.Errorf("%s: truncated at entry %d", c2spPath(tile), k)
			}
			length := int(raw[0])<<8 | int(raw[1])
			if len(raw) < 2+length {
				return count, fmt.Errorf("%s: truncated at entry %d", c2spPath(tile), k)
			}
			entry := raw[2 : 2+length]
			raw = raw[2+length:]
			index := n*256 + k
			if tlog.RecordHash(entry) != leafHashes[k] {
				return count, fmt.Errorf("entry %d does not hash to its level-0 tile hash", index)
			}
			count++
		}
		if len(raw) != 0 {
			return count, fmt.Errorf("%s: %d trailing bytes", c2spPath(tile), len(raw))
		}
	}
	return count, nil
}

// checkPaths parses every file under dir/tile with tlog.ParseTilePath (after mapping the C2SP
// path to sumdb's) and requires the parsed tile to print back to the same C2SP path.
func checkPaths(dir string) (int, error) {
	count := 0
	err := filepath.WalkDir(filepath.Join(dir, "tile"), func(path string, entry fs.DirEntry, err error) error {
		if err != nil || entry.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		rest := strings.TrimPrefix(rel, "tile/")
		if strings.HasPrefix(rest, "entries/") {
			rest = "data/" + strings.TrimPrefix(rest, "entries/")
		}
		tile, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/%s", tileHeight, rest))
		if err != nil {
			return err
		}
		if c2spPath(tile) != rel {
			return errors.New(rel + " does not round-trip")
		}
		count++
		return nil
	})
	return count, err
}
