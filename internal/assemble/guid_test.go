package assemble

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestGUID(t *testing.T) {
	t.Parallel()
	a := GUID("fe2374-8fnejf97-32839218", "2019030422001434180520096410")
	if a != GUID("fe2374-8fnejf97-32839218", "2019030422001434180520096410") {
		t.Error("not deterministic")
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 5 || a != strings.ToUpper(a) || len(a) != 36 {
		t.Errorf("guid %s: %v version %d", a, err, u.Version())
	}
	for _, other := range []string{
		GUID("fe2374-8fnejf97-32839219", "2019030422001434180520096410"),
		GUID("fe2374-8fnejf97-32839218", "2019030422001434180520096411"),
		GUID("fe2374-8fnejf97-32839218\n2019030422001434180520096410", ""),
	} {
		if other == a {
			t.Errorf("collision %s", other)
		}
	}
}
