"""Pages the service serves to its operators and moderators: plain HTML, JS and CSS files in
this folder (package data; no build step, nothing fetched from elsewhere), served by
`console.routes`."""
