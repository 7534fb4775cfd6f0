# A static watchfed in an empty image: no base image can be pulled on the
# machines this runs on, and a node needs nothing but its binary.
#
#   CGO_ENABLED=0 go build -trimpath -o watchfed ./cmd/watchfed
#   docker build -t watchfed .
#
# The binary is built outside (with the Go toolchain at hand) and copied in,
# so the build needs no golang image either.
FROM scratch
COPY watchfed /watchfed
USER 65532:65532
EXPOSE 7400
ENTRYPOINT ["/watchfed"]
CMD ["node", "--config", "/etc/watchfed/node.yaml"]
