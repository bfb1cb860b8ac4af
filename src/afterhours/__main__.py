from afterhours.cli import main

main()
