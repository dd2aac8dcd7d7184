from dronelog.cli import main

main()
