from transports.cli import main

main()
