import os, sys, reproapp
start, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
for i in range(start, start + n):
    reproapp.slow.delay(i, secs)
