"""The local web page of `python -m unet_industrial.serve`: upload a video, see the detector's verdict.

  jobs.py     the queue of uploaded videos, detected one at a time.
  app.py      the WSGI application: uploads, the JSON API, the page.
  assets/     the page itself (HTML, JavaScript, CSS), served from the package.
"""
