from stockyard.cli import main

main()
