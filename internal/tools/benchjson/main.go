// Command benchjson reads `go test -bench` output on standard input, echoes
// it, and merges the metrics that benchmarks report for the project's
// benchmark summary into a JSON file:
//
//	b.ReportMetric(r, "ratio:verify_v1_over_bare_ecdsa")
//	b.ReportMetric(v, "value:wasm_gzip_bytes")
//
// become {"ratios": {"verify_v1_over_bare_ecdsa": r}, "values":
// {"wasm_gzip_bytes": v}} in the file named by -o (default
// build/bench.json). Existing entries of other benchmarks are kept.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

type summary struct {
	Ratios map[string]float64 `json:"ratios"`
	Values map[string]float64 `json:"values"`
}

func main() {
	out := flag.String("o", "build/bench.json", "JSON file to merge into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "benchjson:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	s := summary{Ratios: map[string]float64{}, Values: map[string]float64{}}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if s.Ratios == nil {
			s.Ratios = map[string]float64{}
		}
		if s.Values == nil {
			s.Values = map[string]float64{}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	found := 0
	failed := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") {
			failed = true
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch unit := f[i+1]; {
			case strings.HasPrefix(unit, "ratio:"):
				s.Ratios[strings.TrimPrefix(unit, "ratio:")] = v
				found++
			case strings.HasPrefix(unit, "value:"):
				s.Values[strings.TrimPrefix(unit, "value:")] = v
				found++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if failed {
		return errors.New("a benchmark failed")
	}
	if found == 0 {
		return errors.New("no ratio: or value: metrics in the input")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err = json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
