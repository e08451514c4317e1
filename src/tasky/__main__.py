from tasky.cli import main

main()
