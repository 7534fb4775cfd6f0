package bench

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// freshGiven are common given names of many languages, written for the
// second round of issue 18 from general knowledge (not from the Faker data
// of the ordinary-names file), so that the matcher's false-match rules can
// be checked on names it was not tuned on. Romanised where the language has
// its own script.
var freshGiven = strings.Fields(`
	James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew Anthony Mark
	Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan Jacob Gary
	Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank Raymond
	Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Douglas Zachary Peter Kyle Noah Ethan Jeremy Walter Christian
	Keith Roger Terry Austin Sean Gerald Carl Harold Dylan Arthur Lawrence Jordan Jesse Bryan Billy Bruce Gabriel Joe
	Logan Alan Juan Albert Willie Elijah Wayne Randy Vincent Mason Roy Ralph Bobby Russell Bradley Philip Eugene
	Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Sandra Margaret Ashley
	Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie Dorothy Rebecca Sharon Laura Cynthia Amy
	Kathleen Angela Shirley Brenda Emma Anna Pamela Nicole Samantha Katherine Christine Helen Debra Rachel Carolyn
	Janet Maria Catherine Heather Diane Olivia Julie Joyce Victoria Ruth Virginia Lauren Kelly Christina Joan Evelyn
	Jean Pierre Michel Philippe Alain Nicolas Christophe Laurent Patrick Thierry Olivier Julien Mathieu Antoine
	Guillaume Francois Bernard Jacques Marcel Andre Rene Louis Yves Didier Sylvain Fabien Cedric Maxime Baptiste
	Marie Nathalie Isabelle Sylvie Catherine Sophie Valerie Sandrine Celine Aurelie Camille Manon Chloe Juliette Margaux
	Hans Klaus Jurgen Wolfgang Dieter Uwe Stefan Andreas Thomas Markus Frank Jens Torsten Matthias Sebastian Tobias
	Lukas Jonas Felix Leon Maximilian Florian Ursula Monika Petra Sabine Claudia Susanne Andrea Birgit Katrin Anja
	Jorg Heike Ingrid Gisela Hannelore Renate Karin Brigitte Helga Gerda Annette Dagmar
	Jose Antonio Manuel Francisco Juan David Javier Daniel Carlos Jesus Alejandro Miguel Rafael Pedro Pablo Angel
	Sergio Fernando Jorge Luis Alberto Alvaro Adrian Diego Raul Enrique Ramon Vicente Ignacio Ruben Oscar Andres
	Carmen Josefa Isabel Dolores Pilar Teresa Rosa Cristina Mercedes Lucia Elena Concepcion Manuela Raquel Beatriz
	Joao Antonio Francisco Carlos Paulo Pedro Lucas Luiz Marcos Luis Gabriel Rafael Daniel Marcelo Bruno Eduardo
	Felipe Rodrigo Gustavo Fernanda Juliana Adriana Marcia Aline Patricia Sandra Camila Amanda Bruna Leticia Larissa
	Giuseppe Giovanni Antonio Mario Luigi Francesco Angelo Vincenzo Pietro Salvatore Carlo Franco Domenico Bruno
	Paolo Michele Giorgio Aldo Sergio Luciano Alessandro Lorenzo Matteo Leonardo Giulia Chiara Francesca Federica
	Sara Martina Valentina Alessia Silvia Elisa Giovanna Rosa Anna Angela Lucia Carla Paola
	Jan Piet Kees Henk Gerrit Willem Johannes Cornelis Dirk Bram Sander Thijs Joost Ruud Maarten Wouter Sanne Femke
	Anouk Lotte Marieke Ineke Annelies Petronella Joke
	Piotr Krzysztof Andrzej Tomasz Pawel Marcin Michal Grzegorz Jozef Marek Adam Lukasz Zbigniew Jerzy Tadeusz
	Katarzyna Malgorzata Agnieszka Krystyna Barbara Ewa Elzbieta Zofia Teresa Magdalena Joanna Danuta Dorota
	Jiri Petr Josef Pavel Jaroslav Martin Tomas Miroslav Frantisek Zdenek Vaclav Milan Eva Hana Jana Lenka Vera
	Alexander Sergei Vladimir Dmitry Andrei Alexei Nikolai Ivan Mikhail Yuri Oleg Viktor Igor Pavel Roman Maxim Artem
	Konstantin Boris Vadim Denis Anton Ruslan Evgeny Gennady Stanislav Vitaly Timur Kirill Olga Tatiana Natalia
	Elena Irina Svetlana Marina Ludmila Galina Anastasia Ekaterina Yulia Oksana Larisa Nadezhda Vera Lyubov Tamara
	Taras Bohdan Mykola Oleksandr Volodymyr Serhiy Vasyl Petro Yaroslav Oksana Halyna Kateryna Solomiya
	Mehmet Mustafa Ahmet Ali Huseyin Hasan Ibrahim Ismail Osman Yusuf Murat Omer Ramazan Halil Suleyman Abdullah
	Emre Burak Fatma Ayse Emine Hatice Zeynep Elif Meryem Sultan Zehra Hulya Esra Ozlem
	Mohammed Ahmed Mahmoud Mustafa Omar Khaled Hassan Hussein Youssef Ibrahim Abdullah Karim Tarek Walid Samir
	Nabil Adel Hamza Bilal Rami Ziad Fadi Nasser Sami Fatima Aisha Mariam Nour Layla Salma Yasmin Rania Huda Amal
	Reza Ali Mehdi Hossein Amir Hamid Saeed Majid Mohsen Behrouz Dariush Farhad Kourosh Parisa Shirin Maryam Zahra
	Neda Nasrin Fereshteh Golnaz
	Rahul Amit Sanjay Vijay Rajesh Suresh Ramesh Anil Sunil Deepak Manoj Arjun Vikram Ravi Priya Pooja Anjali Sunita
	Kavita Neha Asha Lakshmi Meena Geeta Imran Asif Tariq Faisal Kamran Bilawal Shahid Nadia Sana Ayesha
	Wei Fang Min Jing Lei Jun Yang Hui Ling Ming Hong Ping Jie Hao Xin Yan Qiang Tao Chen Bo Li Na Xiu Ying
	Hiroshi Takashi Kenji Yuki Akira Satoshi Makoto Daisuke Haruto Ren Sota Yuto Kenta Yoko Keiko Akiko Naoko
	Sakura Yui Haruka Aoi
	Minjun Jihoon Seojun Dohyun Jiwoo Hyunwoo Jimin Minseo Seoyeon Jiyoung Soojin Eunji Hyejin
	Anh Minh Tuan Hung Dung Thanh Long Nam Hoa Lan Huong Mai Linh Trang Thu Ngoc
	Kwame Kofi Kojo Yaw Ama Akua Chinedu Emeka Ngozi Chioma Oluwaseun Tunde Bola Funmilayo Adebayo Yetunde Juma
	Baraka Amani Neema Zawadi Tendai Thabo Sipho Themba Nomvula Lindiwe
	Giorgos Dimitris Yannis Kostas Nikos Panagiotis Vasilis Christos Eleni Maria Katerina Sofia Despina
	Moshe Avraham Yosef Yitzhak David Eitan Noam Yael Tamar Noa Shira Rivka Miriam
	Lars Anders Nils Erik Johan Magnus Henrik Olof Sven Bjorn Karin Ingrid Astrid Sigrid Kerstin Maja Elsa
	Mikko Juha Jukka Timo Matti Antti Pekka Aino Liisa Tuula Sirpa
	Laszlo Istvan Zoltan Gabor Tibor Ferenc Attila Zsuzsa Erzsebet Katalin Ildiko
	Ion Gheorghe Vasile Constantin Mihai Dumitru Nicolae Florin Ioana Elena Mihaela Andreea
	Dragan Milos Nenad Zoran Goran Dejan Marko Jelena Ivana Milica Snezana
	Agus Budi Eko Sri Dewi Putri Rizky Wahyu Siti Nur Juan Jose Mark Joseph Maricel Rowena
`)

// freshBusiness are words ordinary firms of many countries are named
// with, and legal forms.
var (
	freshBusiness = strings.Fields(`Global Star Golden Sun Royal Prime United General National International City Metro
		Green Blue Silver Eagle Lion Ocean Pacific Atlantic Northern Southern Eastern Western Central Alpha Delta Omega
		Trading Logistics Shipping Transport Import Export Consulting Engineering Construction Foods Textiles Solutions
		Systems Services Partners Holdings Industries Electronics Pharma Medical Energy Petroleum Agro Motors Steel
		Bakery Fashion Travel Tours Hotels Software Digital Media Marine Auto Supply Equipment Chemicals Plastics
		Grupo Comercial Distribuidora Servicios Inversiones Transportes Alimentos Industrias Construcciones
		Handel Bau Technik Maschinenbau Logistik Verwaltung Beteiligungen Immobilien Elektro Sicherheit
		Societe Generale Industrielle Commerciale Batiment Transports Conseil Distribution
		Commerciale Costruzioni Trasporti Alimentari Tessile Meccanica Sistemi
		Tekstil Insaat Gida Ticaret Sanayi Nakliyat Enerji Otomotiv
		Stroy Trans Neft Gaz Invest Torg Prom Servis Agro Tekh Resurs`)
	freshForms = []string{"Ltd", "LLC", "Inc", "GmbH", "S.A.", "S.L.", "SRL", "S.p.A.", "B.V.", "AG", "OOO", "A.S.", "Co.", "PLC", "Pty Ltd", "LLP"}
)

// FreshOrdinary builds ordinary names the matcher was not tuned on, from
// freshGiven and freshBusiness with the surnames of the listed persons
// among items, with a fixed seed, n of each kind:
//
//   - given-near: a common given name close to (Jaro-Winkler 0.85 or more)
//     but other than the listed person's given name, before the listed
//     surname as written ("Andrew Johnson" against "ANDRE, Johnson" is
//     that kind, with the roles of the two words crossed);
//   - surname: a common given name before a listed surname as written;
//   - surname-ending: a common given name before a listed surname whose
//     ending is changed as another member of a family's would be
//     (IVANOV, Ivanova; ALVAREZ, Alvares);
//   - business: two business words and a legal form.
//
// A name that holds every word of one listed name (a listed person with a
// middle name dropped) is no ordinary name and is left out.
func FreshOrdinary(items []importer.Item, n int, seed uint64) []Ordinary {
	rng := rand.New(rand.NewPCG(seed, 0))
	dict := map[string]bool{}
	var listed listedNames
	type person struct{ surname, given string }
	var persons []person
	for _, it := range items {
		for _, nm := range recordNames(it) {
			ws := strings.Fields(names.Normalize(nm))
			for _, w := range ws {
				dict[w] = true
			}
			listed.add(ws)
		}
		if it.Record.Subject.Schema != pb.Schema_SCHEMA_PERSON {
			continue
		}
		if sur, given, ok := strings.Cut(it.Record.Subject.Name, ","); ok {
			sw, gw := strings.Fields(names.Normalize(sur)), strings.Fields(names.Normalize(given))
			if len(sw) == 1 && len(sw[0]) >= 4 && len(gw) > 0 {
				persons = append(persons, person{sw[0], gw[0]})
			}
		}
	}
	// onList: every word of the query is in one listed name.
	onList := func(q string) bool {
		return listed.holds(strings.Fields(names.Normalize(q)))
	}
	given := slices.Compact(slices.Sorted(slices.Values(freshGiven)))
	title := func(w string) string { return strings.ToUpper(w[:1]) + w[1:] }
	var out []Ordinary
	seen := map[string]bool{}
	add := func(kind, name, listedGiven string) bool {
		if seen[name] || onList(name) {
			return false
		}
		seen[name] = true
		out = append(out, Ordinary{Kind: kind, Locale: "fresh", Name: name, Given: listedGiven})
		return true
	}
	// given-near: every listed person whose given name has a close other
	// common given name, in a random order.
	k := 0
	for _, i := range rng.Perm(len(persons)) {
		if k == n {
			break
		}
		p := persons[i]
		var near []string
		for _, g := range given {
			lg := strings.ToLower(g)
			// another name: other consonants, not another romanisation
			// of the same ("Mohammed", "Muhammad")
			if names.Skeleton(names.TranslitKey(lg)) != names.Skeleton(names.TranslitKey(p.given)) && jaroWinklerASCII(lg, p.given) >= 0.85 {
				near = append(near, g)
			}
		}
		if len(near) > 0 && add("given-near", near[rng.IntN(len(near))]+" "+title(p.surname), p.given) {
			k++
		}
	}
	for k, tries := 0, 0; k < n && tries < 20*n && len(persons) > 0; tries++ {
		p := persons[rng.IntN(len(persons))]
		if add("surname", given[rng.IntN(len(given))]+" "+title(p.surname), "") {
			k++
		}
	}
	for k, tries := 0, 0; k < n && tries < 20*n && len(persons) > 0; tries++ {
		s := otherEnding(persons[rng.IntN(len(persons))].surname, rng)
		if s == "" || dict[s] {
			continue
		}
		if add("surname-ending", given[rng.IntN(len(given))]+" "+title(s), "") {
			k++
		}
	}
	for k, tries := 0, 0; k < n && tries < 20*n; tries++ {
		a, b := freshBusiness[rng.IntN(len(freshBusiness))], freshBusiness[rng.IntN(len(freshBusiness))]
		if a == b {
			continue
		}
		if add("business", a+" "+b+" "+freshForms[rng.IntN(len(freshForms))], "") {
			k++
		}
	}
	return out
}

// FreshKinds are the kinds of FreshOrdinary and RepairedOrdinary, in table
// order, each followed by the names SeparateSameName moves out of it.
var FreshKinds = []string{"given-near", "given-near" + sameNameKind, "surname", "surname" + sameNameKind, "surname-ending", "surname-ending" + sameNameKind,
	"business", "business" + sameNameKind, "re-paired", "re-paired" + sameNameKind}

// sameNameKind marks a kind of ordinary names whose given name is the listed
// person's in another form (SeparateSameName).
const sameNameKind = " same-name"

// SeparateSameName moves to a kind of their own (kind + " same-name") the
// ordinary names of every set that are a listed person's name written
// otherwise, which a screen should report: neither false matches nor
// dropped, they are counted in their own row. Two rules, the same for every
// set:
//
//   - a name paired with a listed person (given-near, re-paired, cross-list)
//     whose first word is, by the lexicon g, that person's given name in
//     another language or romanisation ("Edward Ruiz" for "RUIZ, Eduardo";
//     "Jon Smith" for "SMITH, John");
//   - any ordinary name that is some listed person's name written otherwise
//     (sameListedName): each of its words one of that name's, as written,
//     in another romanisation (names.TranslitKey) or, for a given name of
//     the listed name, the same given name by the lexicon; in any order,
//     the listed name's other words left out ("Alexander Ostrovskiy" for
//     "OSTROWSKY, Alexander"; "Ryan Jon" for "RYAN, John"; "Hasan Husayn"
//     for "Sheikh Hassaan Hussein").
//
// It returns how many names the second rule moved that the first did not.
// Without a lexicon only the second rule applies, without its lexicon part.
func SeparateSameName(sets []EvalSet, items []importer.Item, g *names.GivenNames) int {
	ln := newListedForms(items)
	moved := 0
	for i := range sets {
		for j, o := range sets[i].Ordinary {
			if strings.HasSuffix(o.Kind, sameNameKind) {
				continue
			}
			ws := strings.Fields(names.Normalize(o.Name))
			switch {
			case o.Given != "" && len(ws) > 0 && g.Relate(ws[0], o.Given) == names.SameName:
			case ln.sameListedName(ws, g):
				moved++
			default:
				continue
			}
			sets[i].Ordinary[j].Kind += sameNameKind
		}
	}
	return moved
}

// listedForms are the listed persons' names' words (particles left out) with their
// romanisation keys and which are given names, indexed by key.
type listedForms struct {
	names []listedForm
	byKey map[string][]int
}

type listedForm struct {
	words, keys []string
	given       []bool // a given name of this name: after the comma, or the first word
}

func newListedForms(items []importer.Item) *listedForms {
	l := &listedForms{byKey: map[string][]int{}}
	for _, it := range items {
		if it.Record.Subject.Schema != pb.Schema_SCHEMA_PERSON {
			continue
		}
		for _, nm := range recordNames(it) {
			sur, _, comma := strings.Cut(nm, ",")
			nSur := len(strings.Fields(names.Normalize(sur)))
			var f listedForm
			for i, w := range strings.Fields(names.Normalize(nm)) {
				if names.Particle(w) {
					continue
				}
				f.words = append(f.words, w)
				f.keys = append(f.keys, names.TranslitKey(w))
				f.given = append(f.given, comma && i >= nSur || !comma && i == 0)
			}
			if len(f.words) < 2 {
				continue
			}
			for _, k := range slices.Compact(slices.Sorted(slices.Values(f.keys))) {
				l.byKey[k] = append(l.byKey[k], len(l.names))
			}
			l.names = append(l.names, f)
		}
	}
	return l
}

// sameListedName reports whether the words ws (normalised, of two or more
// words other than particles) are a listed person's name written otherwise: each
// word taken by its own word of one listed name that is the same word, the
// same in another romanisation (TranslitKey: "ostrovskiy", "ostrowsky";
// "hassan", "hasan") or, where the listed word is a given name of that
// name, the same given name by the lexicon g ("jon", "john"). A listed name
// is looked up by the key of one of the words, so a name none of whose
// words has a listed word's key is not found.
func (l *listedForms) sameListedName(ws []string, g *names.GivenNames) bool {
	var qs, qk []string
	for _, w := range ws {
		if !names.Particle(w) {
			qs, qk = append(qs, w), append(qk, names.TranslitKey(w))
		}
	}
	if len(qs) < 2 {
		return false
	}
	tried := map[int]bool{}
	for _, k := range slices.Compact(slices.Sorted(slices.Values(qk))) {
		for _, ni := range l.byKey[k] {
			if tried[ni] {
				continue
			}
			tried[ni] = true
			f := &l.names[ni]
			if len(f.words) < len(qs) {
				continue
			}
			same := func(q, n int) bool {
				return qk[q] == f.keys[n] || f.given[n] && g.Relate(qs[q], f.words[n]) == names.SameName
			}
			if pairAll(len(qs), len(f.words), same) {
				return true
			}
		}
	}
	return false
}

// pairAll reports whether each of nq query words can be given its own of nn
// listed words with same (a search over the few words of a name).
func pairAll(nq, nn int, same func(q, n int) bool) bool {
	used := make([]bool, nn)
	var next func(q int) bool
	next = func(q int) bool {
		if q == nq {
			return true
		}
		for n := range nn {
			if !used[n] && same(q, n) {
				used[n] = true
				if next(q + 1) {
					return true
				}
				used[n] = false
			}
		}
		return false
	}
	return next(0)
}

// otherEnding changes a surname's ending the way relatives' names differ:
// a feminine or masculine form, another vowel, a letter added or dropped.
func otherEnding(s string, rng *rand.Rand) string {
	switch {
	case strings.HasSuffix(s, "ova") || strings.HasSuffix(s, "eva") || strings.HasSuffix(s, "ina"):
		return s[:len(s)-1]
	case strings.HasSuffix(s, "ov") || strings.HasSuffix(s, "ev") || strings.HasSuffix(s, "in") || strings.HasSuffix(s, "sky"):
		if strings.HasSuffix(s, "sky") {
			return s[:len(s)-1] + "aya"
		}
		return s + "a"
	case strings.HasSuffix(s, "ez"):
		return s[:len(s)-1] + "s"
	}
	last := s[len(s)-1]
	if strings.IndexByte("aeiou", last) >= 0 {
		vs := strings.ReplaceAll("aeio", string(last), "")
		return s[:len(s)-1] + string(vs[rng.IntN(len(vs))])
	}
	return s + []string{"i", "a", "s"}[rng.IntN(3)]
}

// listedNames are the listed names' words, indexed by word.
type listedNames struct {
	names  [][]string
	byWord map[string][]int
}

func (l *listedNames) add(ws []string) {
	if l.byWord == nil {
		l.byWord = map[string][]int{}
	}
	for _, w := range ws {
		if ix := l.byWord[w]; len(ix) == 0 || ix[len(ix)-1] != len(l.names) {
			l.byWord[w] = append(l.byWord[w], len(l.names))
		}
	}
	l.names = append(l.names, ws)
}

// holds reports whether one listed name has every word of q (each used
// once): such a query, or an empty one, is no ordinary name.
func (l *listedNames) holds(q []string) bool {
	return len(q) == 0 || slices.ContainsFunc(l.byWord[q[0]], func(i int) bool {
		return takeEach(l.names[i], q, func(q, l string) bool { return q == l })
	})
}

// jaroWinklerASCII is the Jaro-Winkler similarity of two lower-case words,
// to pick given names close to a listed one.
func jaroWinklerASCII(a, b string) float64 {
	if a == b {
		return 1
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(a) == 0 {
		return 0
	}
	window := max(len(b)/2-1, 0)
	ma, mb := make([]bool, len(a)), make([]bool, len(b))
	m := 0
	for i := range len(a) {
		for j := max(0, i-window); j < min(len(b), i+window+1); j++ {
			if !mb[j] && a[i] == b[j] {
				ma[i], mb[j] = true, true
				m++
				break
			}
		}
	}
	if m == 0 {
		return 0
	}
	t, j := 0, 0
	for i := range len(a) {
		if !ma[i] {
			continue
		}
		for !mb[j] {
			j++
		}
		if a[i] != b[j] {
			t++
		}
		j++
	}
	f := float64(m)
	jaro := (f/float64(len(a)) + f/float64(len(b)) + (f-float64(t)/2)/f) / 3
	p := 0
	for p < 4 && p < len(a) && a[p] == b[p] {
		p++
	}
	return jaro + float64(p)*0.1*(1-jaro)
}

// RepairedOrdinary is a second set of ordinary names the matcher was not
// tuned on, made differently from FreshOrdinary: the persons of the
// held-out rows of the ordinary-names file (Faker names of many locales,
// romanised), each with its surname replaced by the surname of a listed
// person whose given name is one or two edits from the person's own
// first name (a letter changed, added, dropped, or two swapped), but not
// another romanisation of it (the same consonants or romanisation key).
// The listed surname is taken as written, however many words it has; the
// person's other given names stay. Where FreshOrdinary picks close given
// names by Jaro-Winkler from a list written for it, this picks them by
// edit distance from names of another source, and keeps multi-word
// surnames and middle names. A name holding every word of a listed name
// is left out. Kind "re-paired", locale the person's.
func RepairedOrdinary(items []importer.Item, ordinary []Ordinary, n int, seed uint64) []Ordinary {
	rng := rand.New(rand.NewPCG(seed, 0))
	var listed listedNames
	persons, byGiven := listedPersons(items, func(ws []string) { listed.add(ws) })
	givens := slices.Sorted(maps.Keys(byGiven))
	title := func(s string) string {
		ws := strings.Fields(strings.ToLower(s))
		for i, w := range ws {
			ws[i] = strings.ToUpper(w[:1]) + w[1:]
		}
		return strings.Join(ws, " ")
	}
	// Surname-first locales: their first word is no given name.
	surnameFirst := map[string]bool{"hu_HU": true, "zh_CN": true, "zh_TW": true, "ja_JP": true, "ko_KR": true}
	var out []Ordinary
	seen := map[string]bool{}
	for _, i := range rng.Perm(len(ordinary)) {
		if len(out) == n {
			break
		}
		o := ordinary[i]
		ws := strings.Fields(names.Normalize(o.Name))
		if o.Kind != "person" || surnameFirst[o.Locale] || len(ws) < 2 || len(ws[0]) < 3 {
			continue
		}
		g := ws[0]
		var near []string
		for _, lg := range givens {
			if lg != g && names.TranslitKey(lg) != names.TranslitKey(g) && names.Skeleton(names.TranslitKey(lg)) != names.Skeleton(names.TranslitKey(g)) && editsWithin2(lg, g) {
				near = append(near, lg)
			}
		}
		if len(near) == 0 {
			continue
		}
		ps := byGiven[near[rng.IntN(len(near))]]
		p := persons[ps[rng.IntN(len(ps))]]
		// the person's given names (all but the last word), then the listed surname
		name := title(strings.Join(ws[:len(ws)-1], " ")) + " " + title(p.surname)
		qs := strings.Fields(names.Normalize(name))
		if seen[name] || listed.holds(qs) {
			continue
		}
		seen[name] = true
		out = append(out, Ordinary{Kind: "re-paired", Locale: o.Locale, Name: name, Given: p.given})
	}
	return out
}

// editsWithin2 reports whether a and b are one or two edits apart (a
// letter changed, added or dropped, or two neighbours swapped: optimal
// string alignment distance).
func editsWithin2(a, b string) bool {
	if d := len(a) - len(b); d > 2 || d < -2 {
		return false
	}
	return editDistance(a, b) <= 2
}

// editDistance is the optimal string alignment distance of a and b: letters
// changed, added or dropped, and neighbours swapped.
func editDistance(a, b string) int {
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// listedPerson is a listed person's name written "SURNAME, Given ...".
type listedPerson struct {
	surname string // as written, before the comma
	given   string // the first given name, normalised
}

// listedPersons reads the listed persons of items whose surname and first
// given name have three letters or more, and the indices of them by that
// given name; each name of every item, normalised into words, goes to
// eachName first.
func listedPersons(items []importer.Item, eachName func(words []string)) ([]listedPerson, map[string][]int) {
	var persons []listedPerson
	for _, it := range items {
		for _, nm := range recordNames(it) {
			eachName(strings.Fields(names.Normalize(nm)))
		}
		if it.Record.Subject.Schema != pb.Schema_SCHEMA_PERSON {
			continue
		}
		if sur, given, ok := strings.Cut(it.Record.Subject.Name, ","); ok {
			if gw := strings.Fields(names.Normalize(given)); len(gw) > 0 && len(gw[0]) >= 3 && len(names.Normalize(sur)) >= 3 {
				persons = append(persons, listedPerson{strings.TrimSpace(sur), gw[0]})
			}
		}
	}
	byGiven := map[string][]int{}
	for i, p := range persons {
		byGiven[p.given] = append(byGiven[p.given], i)
	}
	return persons, byGiven
}
