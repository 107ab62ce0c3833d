package useragent

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// uap-core's parsers are ordered lists of regular expressions (about 600
// for browsers, 200 for operating systems, 1,600 for devices); the first
// that matches names the family. Go's regexp runs each of them over the
// string, about 1 ms a string in all: over a stream's first minute, with
// thousands of distinct agents, that was several percent of sluice's CPU.
// Most expressions name a literal that every text they match contains
// ("Firefox", "CrOS", "(?i)bot"): a prefilter checks for it with a
// substring search and skips the expression when it is absent. A
// prefilter only ever skips expressions that cannot match, so the first
// expression that matches is the same, and so is the parse (the idea of
// RE2's FilteredRE2 and of uap-rust's regex-filtered, in a simple form: a
// conjunction of sets of alternative literals per expression).

// maxLiterals bounds a prefilter's alternatives: an alternation of more
// literals than this is left unfiltered.
const maxLiterals = 256

// literal is a text that a match must contain; fold: compared ignoring
// ASCII case (s is then lower case).
type literal struct {
	s    string
	fold bool
}

// prefilter is a necessary condition for one expression to match: every
// text it matches contains, for each set of all, one of its literals. No
// sets: no condition is known and the expression always runs.
type prefilter struct {
	all [][]literal
}

// agent is a user-agent string prepared for prefilters.
type agent struct {
	s     string
	lower string // s with ASCII letters lower-cased
	ascii bool   // s is all ASCII
}

func newAgent(s string) agent {
	a := agent{s: s, ascii: true}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			a.ascii = false
			break
		}
	}
	a.lower = asciiLower(s)
	return a
}

// mayMatch reports whether the expression can match a: false only when
// a lacks every literal of one of the sets. A case-insensitive literal
// is not trusted on text with non-ASCII characters: Unicode folds the
// Kelvin sign to k and the long s to s, which ASCII lower-casing misses.
func (p prefilter) mayMatch(a *agent) bool {
	for _, set := range p.all {
		if !a.containsAny(set) {
			return false
		}
	}
	return true
}

func (a *agent) containsAny(lits []literal) bool {
	for _, l := range lits {
		switch {
		case !l.fold:
			if strings.Contains(a.s, l.s) {
				return true
			}
		case !a.ascii:
			return true
		case strings.Contains(a.lower, l.s):
			return true
		}
	}
	return false
}

// newPrefilter derives the prefilter of expr, a Go regular expression as
// regexp.Compile takes it (uap-go compiles "(?flags)regex"). An
// expression it cannot parse gets none.
func newPrefilter(expr string) prefilter {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return prefilter{}
	}
	all := required(re)
	// The most selective set first: most expressions fail on it.
	slices.SortStableFunc(all, func(a, b []literal) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return prefilter{all: all}
}

// required returns sets of literals such that every match of re
// contains one literal of each set; none when it knows nothing. It is
// sound, not complete: whatever it cannot reason about (classes,
// optional parts, case-folded non-ASCII literals) adds no set, never a
// wrong one.
func required(re *syntax.Regexp) [][]literal {
	switch re.Op {
	case syntax.OpLiteral:
		return literalOf(re.Rune, re.Flags&syntax.FoldCase != 0)
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpAlternate:
		// A match is a match of one branch: one literal of the union of
		// one set of each branch (its most selective).
		var union []literal
		for _, sub := range re.Sub {
			sets := required(sub)
			if len(sets) == 0 {
				return nil
			}
			best := sets[0]
			for _, set := range sets[1:] {
				if better(set, best) {
					best = set
				}
			}
			if len(union)+len(best) > maxLiterals {
				return nil
			}
			union = append(union, best...)
		}
		return [][]literal{union}
	case syntax.OpConcat:
		// Every part of a concatenation is in every match, and adjacent
		// literals side by side: one literal.
		var all [][]literal
		for i := 0; i < len(re.Sub); {
			if re.Sub[i].Op != syntax.OpLiteral {
				all = append(all, required(re.Sub[i])...)
				i++
				continue
			}
			var run []rune
			fold := false
			for ; i < len(re.Sub) && re.Sub[i].Op == syntax.OpLiteral; i++ {
				run = append(run, re.Sub[i].Rune...)
				fold = fold || re.Sub[i].Flags&syntax.FoldCase != 0
			}
			all = append(all, literalOf(run, fold)...)
		}
		return all
	}
	return nil
}

// literalOf is the literal of runes, compared ignoring case when fold:
// then ASCII only (a non-ASCII rune may fold to an ASCII one, and back).
// Exact, its UTF-8 bytes, but for U+FFFD, which regexp also reads for an
// invalid byte. Comparing part of a literal ignoring case (adjacent
// literals of which one folds) is weaker than the expression, never
// stronger: still sound.
func literalOf(runes []rune, fold bool) [][]literal {
	if len(runes) == 0 {
		return nil
	}
	var b []byte
	for _, r := range runes {
		if (fold && r >= utf8.RuneSelf) || r == utf8.RuneError {
			return nil
		}
		b = utf8.AppendRune(b, r)
	}
	s := string(b)
	if fold {
		s = asciiLower(s)
	}
	return [][]literal{{{s: s, fold: fold}}}
}

// better reports whether literals a filter more than b: the shortest of
// a is longer (a short literal is in most strings), or as long with
// fewer alternatives.
func better(a, b []literal) bool {
	ma, mb := shortest(a), shortest(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func shortest(lits []literal) int {
	m := -1
	for _, l := range lits {
		if m < 0 || len(l.s) < m {
			m = len(l.s)
		}
	}
	return m
}

// asciiLower lower-cases the ASCII letters of s (s itself when it has
// none in upper case).
func asciiLower(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
