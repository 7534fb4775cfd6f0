package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every leaf command's help shows an example.
func TestEveryLeafHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasSubCommands() && strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no Example in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
}
