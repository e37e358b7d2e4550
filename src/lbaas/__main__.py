from lbaas.cli.main import main

main()
