package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/record"
)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a development CA and certificates (no openssl needed)",
		Long: `Make a development certificate authority for an agency and certificates it issues.
A certificate names its agency (subject O) and its roles (one subject OU each:
node, operator, analyst, consumer); the node authorises every call by them.`,
		Example: `  watchfed certs ca --agency DE-BAFA --dir certs
  watchfed certs issue --dir certs --agency DE-BAFA --name node1 --role node --host localhost --host 127.0.0.1
  watchfed certs issue --dir certs --agency DE-BAFA --name alice --role analyst --role operator`,
	}
	var agency, dir string
	ca := &cobra.Command{
		Use:     "ca",
		Short:   "Make a CA for an agency in DIR (ca.pem, ca-key.pem)",
		Example: `  watchfed certs ca --agency DE-BAFA --dir certs`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := record.ValidateAgencyID(agency); err != nil {
				return usagef("--agency: %v", err)
			}
			c, err := pki.NewCA(agency)
			if err != nil {
				return err
			}
			if err := c.Save(dir); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(dir, pki.CACertFile))
			return nil
		},
	}
	ca.Flags().StringVar(&agency, "agency", "", "agency id, e.g. DE-BAFA (required)")
	ca.Flags().StringVar(&dir, "dir", "certs", "directory for the CA files")
	var name, out string
	var roles, hosts []string
	issue := &cobra.Command{
		Use:   "issue",
		Short: "Issue a certificate with the CA in --dir (NAME.pem, NAME-key.pem)",
		Example: `  watchfed certs issue --dir certs --agency DE-BAFA --name node1 --role node --host localhost --host 127.0.0.1
  watchfed certs issue --dir certs --agency DE-BAFA --name alice --role analyst --role operator`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := pki.LoadCA(dir)
			if err != nil {
				return usageError{err}
			}
			var rs []pki.Role
			for _, r := range roles {
				role, err := pki.ParseRole(r)
				if err != nil {
					return usagef("--role: %v", err)
				}
				rs = append(rs, role)
			}
			is, err := c.Issue(pki.IssueRequest{Agency: agency, Name: name, Roles: rs, Hosts: hosts})
			if err != nil {
				return usageError{err}
			}
			base := out
			if base == "" {
				base = filepath.Join(dir, name)
			}
			certPath, keyPath, err := pki.SaveIssued(is, base)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), certPath)
			fmt.Fprintln(cmd.OutOrStdout(), keyPath)
			return nil
		},
	}
	issue.Flags().StringVar(&dir, "dir", "certs", "directory of the CA")
	issue.Flags().StringVar(&agency, "agency", "", "agency id; must be the CA's (required)")
	issue.Flags().StringVar(&name, "name", "", "holder name, the subject CN (required)")
	issue.Flags().StringArrayVar(&roles, "role", nil, "role: node, operator, analyst, consumer (repeatable, at least one)")
	issue.Flags().StringArrayVar(&hosts, "host", nil, "DNS name or IP the node is reached at (node certificates; repeatable)")
	issue.Flags().StringVar(&out, "out", "", "output path without extension (default DIR/NAME)")
	cmd.AddCommand(ca, issue)
	return cmd
}
