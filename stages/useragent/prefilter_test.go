package useragent

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/ua-parser/uap-go/uaparser"
	"gopkg.in/yaml.v3"
)

func TestRequiredLiterals(t *testing.T) {
	type lits = []literal
	for _, c := range []struct {
		expr string
		want [][]literal // nil: no prefilter
	}{
		{`Firefox/(\d+)\.(\d+)`, []lits{{{"Firefox/", false}}, {{".", false}}}},
		{`(?i)bot`, []lits{{{"bot", true}}}},
		{`(?i)Bot`, []lits{{{"bot", true}}}},
		{`(Chrome|Chromium)/(\d+)`, []lits{{{"Chrom", false}}, {{"/", false}}, {{"e", false}, {"ium", false}}}},
		// Go's parser factors the common O out.
		{`(Opera Mini|OPiOS)/(\d+)`, []lits{{{"pera Mini", false}, {"PiOS", false}}, {{"O", false}}, {{"/", false}}}},
		{`[Vv]ersion/(\d+)`, []lits{{{"version/", true}}}},
		{`Mozilla.{1,200}Android.{1,200}(GSA)/(\d+)`, []lits{{{"Mozilla", false}}, {{"Android", false}}, {{"GSA", false}}, {{"/", false}}}},
		// A branch's most selective set joins the union.
		{`(Edg.*Mobile|CriOS)`, []lits{{{"Mobile", false}, {"CriOS", false}}}},
		{`(\w+)/(\d+)`, []lits{{{"/", false}}}},
		{`\w+\d*`, nil},
		{`(Silk)?/(\d+)`, []lits{{{"/", false}}}},
		{`(a|b*)c`, []lits{{{"c", false}}}},
		{`(a|b*)`, nil},
		{`x{0,3}`, nil},
		{`(xy){2,}`, []lits{{{"xy", false}}}},
		{`(?i)straße`, nil},                     // folds non-ASCII
		{`straße`, []lits{{{"straße", false}}}}, // exact: its UTF-8 bytes
		{"a\uFFFDb", nil},                       // an invalid byte is U+FFFD to regexp
		{`(`, nil},                              // not an expression
	} {
		got := newPrefilter(c.expr).all
		if !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("%s: literals %v, want %v", c.expr, got, c.want)
		}
	}
}

func TestMayMatch(t *testing.T) {
	for _, c := range []struct {
		expr, text string
		want       bool
	}{
		{`Firefox/(\d+)`, "Mozilla/5.0 Firefox/124.0", true},
		{`Firefox/(\d+)`, "Mozilla/5.0 firefox/124.0", false},
		{`(?i)firefox/(\d+)`, "Mozilla/5.0 FIREFOX/124.0", true},
		{`(?i)bot`, "Mozilla/5.0 Safari", false},
		// The Kelvin sign folds to k: non-ASCII text runs the expression.
		{`(?i)kbot`, "\u212Abot", true},
		{`(?i)kbot`, "xbot", false},
		{`\w+`, "", true},
		{`straße`, "Strasse", false},
		{`straße`, "x straße", true},
	} {
		a := newAgent(c.text)
		if got := newPrefilter(c.expr).mayMatch(&a); got != c.want {
			t.Errorf("%s on %q: %v, want %v", c.expr, c.text, got, c.want)
		}
	}
}

// TestPrefilterSound: for every uap-core rule, texts its expression
// matches (generated from the expression, letters of case-insensitive
// parts in random case, now and then the Kelvin sign or long s, inside
// random context) pass its prefilter.
func TestPrefilterSound(t *testing.T) {
	u := families()
	type rule struct {
		re  *regexp.Regexp
		pre prefilter
	}
	var rules []rule
	for i, r := range u.rules.UA {
		rules = append(rules, rule{r.Reg, u.ua[i]})
	}
	for i, r := range u.rules.OS {
		rules = append(rules, rule{r.Reg, u.os[i]})
	}
	for i, r := range u.rules.Device {
		rules = append(rules, rule{r.Reg, u.device[i]})
	}
	rng := rand.New(rand.NewPCG(7, 2026))
	samples := 20
	if testing.Short() {
		samples = 3
	}
	filtered, matched := 0, 0
	for _, r := range rules {
		re, err := syntax.Parse(r.re.String(), syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.pre.all) > 0 {
			filtered++
		}
		for range samples {
			var sb strings.Builder
			sb.WriteString(randomContext(rng))
			generate(&sb, re, rng)
			sb.WriteString(randomContext(rng))
			s := sb.String()
			if !r.re.MatchString(s) {
				continue // an assertion the generator does not honour
			}
			matched++
			if a := newAgent(s); !r.pre.mayMatch(&a) {
				t.Errorf("%s matches %q, its prefilter %v rules it out", r.re, s, r.pre.all)
			}
		}
	}
	t.Logf("%d rules, %d with a prefilter; %d generated matches checked", len(rules), filtered, matched)
	if filtered < len(rules)*3/4 {
		t.Errorf("only %d of %d rules have a prefilter", filtered, len(rules))
	}
}

func randomContext(rng *rand.Rand) string {
	const pieces = "Mozilla/5.0 (Linux; Android 14) ; x y/1.2 "
	i, j := rng.IntN(len(pieces)), rng.IntN(len(pieces))
	return pieces[min(i, j):max(i, j)]
}

// generate writes to sb a text that re likely matches (empty-width
// assertions are not honoured: the caller checks).
func generate(sb *strings.Builder, re *syntax.Regexp, rng *rand.Rand) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				r = randomFold(r, rng)
			}
			sb.WriteRune(r)
		}
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return
		}
		k := 2 * rng.IntN(len(re.Rune)/2)
		lo, hi := re.Rune[k], re.Rune[k+1]
		hi = min(hi, lo+200)
		sb.WriteRune(lo + rune(rng.IntN(int(hi-lo)+1)))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		sb.WriteByte(byte('!' + rng.IntN(90)))
	case syntax.OpCapture:
		generate(sb, re.Sub[0], rng)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		lo, hi := 0, 3
		switch re.Op {
		case syntax.OpPlus:
			lo = 1
		case syntax.OpQuest:
			hi = 1
		case syntax.OpRepeat:
			lo, hi = re.Min, re.Min+2
			if re.Max >= 0 {
				hi = min(hi, re.Max)
			}
		}
		for range lo + rng.IntN(hi-lo+1) {
			generate(sb, re.Sub[0], rng)
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			generate(sb, sub, rng)
		}
	case syntax.OpAlternate:
		generate(sb, re.Sub[rng.IntN(len(re.Sub))], rng)
	}
}

// randomFold is r or another rune of its case-folding orbit (K, k and the
// Kelvin sign; S, s and the long s; ...).
func randomFold(r rune, rng *rand.Rand) rune {
	for range rng.IntN(3) {
		r = unicode.SimpleFold(r)
	}
	return r
}

// corpusStride: TestParseAsUAPGo checks every corpusStride-th string
// (1, and 25 under the race detector, where uap-go's parse of a string
// over every rule takes some 40 ms instead of 1).
var corpusStride = 1

// TestParseAsUAPGo: on every distinct string of uap-core's corpus, and
// the test_ua and test_os strings in upper and lower case too, the
// prefiltered rules give what uap-go's own parser gives over every rule:
// the browser, the operating system and the device (family, brand,
// model), field by field.
func TestParseAsUAPGo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every uap-core rule over the corpus")
	}
	var texts []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			texts = append(texts, s)
		}
	}
	for _, name := range []string{"test_ua.yaml", "test_os.yaml", "test_device.yaml"} {
		for _, c := range uapCorpus(t, name) {
			add(c.UA)
			if name != "test_device.yaml" {
				add(strings.ToUpper(c.UA))
				add(strings.ToLower(c.UA))
			}
		}
	}
	var def uaparser.RegexDefinitions
	if err := yaml.Unmarshal(uaparser.DefinitionYaml, &def); err != nil {
		t.Fatal(err)
	}
	ref, err := uaparser.New(uaparser.WithRegexDefinitions(def), uaparser.WithCacheSize(1))
	if err != nil {
		t.Fatal(err)
	}
	u := families()
	// uap-go says Other when no rule matches, and so do some rules;
	// family() makes both "".
	other := func(f string) string {
		if f == "Other" {
			return ""
		}
		return f
	}
	var mu sync.Mutex
	bad := 0
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w * corpusStride; i < len(texts); i += workers * corpusStride {
				s := texts[i]
				a := newAgent(s)
				wantB, wantO, wantD := *ref.ParseUserAgent(s), *ref.ParseOs(s), *ref.ParseDevice(s)
				wantB.Family, wantO.Family, wantD.Family = other(wantB.Family), other(wantO.Family), other(wantD.Family)
				var d uaparser.Device
				firstMatch(u.device, &a, func(i int) bool { u.rules.Device[i].Match(s, &d); return d.Family != "" })
				b, o := u.browser(&a), u.opSystem(&a)
				b.Family, o.Family, d.Family = other(b.Family), other(o.Family), other(d.Family)
				if b != wantB || o != wantO || d != wantD || u.isSpider(&a) != (wantD.Family == "Spider") {
					mu.Lock()
					if bad++; bad <= 20 {
						t.Errorf("%q: browser %+v os %+v device %+v; uap-go %+v %+v %+v", s, b, o, d, wantB, wantO, wantD)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d strings, %d differ from uap-go", len(texts), bad)
}
