SELECT title
FROM devday_comedymovies.films
