"""Radio link protocol stack: KISS, AX.25, CCSDS space packets, uplink authentication, beacon,
downlink scheduling and the link component that ties them to the satellite."""
